-- Views shaped for BI tools (Power BI, Tableau, Metabase): one per subject, readable column names,
-- the dimensions already joined, revenue already defined. Point a BI tool at the schema `bi`.
create schema bi;

-- One row per order line, with everything a report slices by (the customer and product as they were
-- when the order was placed).
create view bi.sales as
select
    f.order_id,
    f.order_item_id,
    f.order_ts as ordered_at,
    d.full_date as order_date,
    d.year,
    d.quarter,
    d.month,
    d.month_name,
    d.iso_week,
    d.day_name,
    d.is_weekend,
    d.is_holiday,
    f.customer_id,
    c.full_name as customer_name,
    c.city,
    c.state,
    c.country,
    c.segment as region,
    f.product_id,
    p.product_name,
    p.category,
    p.sub_category,
    p.brand,
    p.price_band,
    s.status as order_status,
    s.lifecycle_stage,
    s.is_revenue as counts_as_revenue,
    m.display_name as payment_method,
    m.method_type as payment_type,
    f.quantity,
    f.unit_price,
    f.discount_amount,
    f.line_total,
    f.cost_amount as cost,
    f.profit,
    case when s.is_revenue then f.line_total else 0 end as revenue,
    case when s.is_revenue then f.profit else 0 end as revenue_profit
from warehouse.fact_sales as f
join warehouse.dim_date as d on d.date_key = f.date_key
join warehouse.dim_customer as c on c.customer_key = f.customer_key
join warehouse.dim_product as p on p.product_key = f.product_key
join warehouse.dim_status as s on s.status_key = f.status_key
join warehouse.dim_payment_method as m on m.payment_method_key = f.payment_method_key;

create view bi.daily_sales as
select
    a.full_date as sales_date,
    d.year,
    d.month,
    d.month_name,
    d.day_name,
    d.is_weekend,
    d.is_holiday,
    d.holiday_name,
    a.orders as orders_placed,
    a.items as items_sold,
    a.revenue,
    a.profit,
    a.unique_customers,
    a.avg_order_value,
    a.cancelled_orders,
    a.returned_orders
from warehouse.agg_daily_sales as a
join warehouse.dim_date as d on d.date_key = a.date_key;

create view bi.products as
select
    a.product_id,
    a.product_name,
    a.category,
    p.sub_category,
    p.brand,
    p.price as current_price,
    p.cost as current_cost,
    p.price_band,
    a.quantity as units_sold,
    a.orders,
    a.revenue,
    a.profit,
    a.margin,
    a.avg_discount_pct,
    a.return_rate,
    a.revenue_rank
from warehouse.agg_product_performance as a
left join warehouse.dim_product as p on p.product_id = a.product_id and p.is_current;

create view bi.customers as
select
    a.customer_id,
    c.full_name as customer_name,
    c.email,
    c.city,
    c.state,
    c.country,
    c.segment as region,
    a.orders,
    a.total_spent,
    a.avg_order_value,
    a.first_purchase,
    a.last_purchase,
    a.days_since_last_purchase,
    a.recency_score,
    a.frequency_score,
    a.monetary_score,
    a.rfm_segment,
    a.lifetime_value
from warehouse.agg_customer_metrics as a
left join warehouse.dim_customer as c on c.customer_id = a.customer_id and c.is_current;

-- Customer and product history (SCD type 2), for "as it was" questions.
create view bi.customer_history as
select customer_id, full_name as customer_name, email, city, state, country, segment as region,
       valid_from, valid_to, is_current
from warehouse.dim_customer
where customer_key > 0;

create view bi.product_history as
select product_id, product_name, category, sub_category, brand, price, cost, price_band, valid_from, valid_to,
       is_current
from warehouse.dim_product
where product_key > 0;

create view bi.calendar as
select full_date as calendar_date, year, quarter, month, month_name, iso_year, iso_week, day_of_month, day_of_week,
       day_name, is_weekend, is_holiday, holiday_name
from warehouse.dim_date;
