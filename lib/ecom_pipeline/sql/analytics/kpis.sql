-- Headline figures: revenue counts the revenue statuses only (dim_status.is_revenue).
-- Reads analytics_orders, the temp table analytics/orders.sql makes.
select
    coalesce(sum(o.amount) filter (where o.is_revenue), 0) as revenue,
    coalesce(sum(o.profit) filter (where o.is_revenue), 0) as profit,
    round(sum(o.profit) filter (where o.is_revenue) / nullif(sum(o.amount) filter (where o.is_revenue), 0), 4)
        as margin,
    count(*) filter (where o.is_revenue) as orders,
    round(avg(o.amount) filter (where o.is_revenue), 2) as avg_order_value,
    coalesce(sum(o.quantity) filter (where o.is_revenue), 0) as items,
    count(distinct o.customer_id) filter (where o.is_revenue) as customers,
    count(*) as orders_placed,
    count(*) filter (where o.status = 'cancelled') as cancelled_orders,
    count(*) filter (where o.status = 'returned') as returned_orders,
    (select min(full_date) from warehouse.agg_daily_sales) as first_date,
    (select max(full_date) from warehouse.agg_daily_sales) as last_date
from analytics_orders as o
