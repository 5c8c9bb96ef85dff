-- The `bi` schema as BI tools want it: a star (one fact view, one view per dimension, joined on the
-- warehouse's surrogate keys) beside the flat views, a description on every view and column, no personal
-- data (names, e-mail) unless `warehouse.bi_personal_data` turns on `bi.customer_personal_data`, and a
-- read-only role that may read `bi` and nothing else. docs/data_dictionary.md is generated from the
-- comments (python -m ecom_pipeline.dictionary).

-- The read-only role BI tools log in as. A role belongs to the server, not to one database: it is made
-- once, and only by a role allowed to (a pipeline role without CREATEROLE skips it; docs/dashboard_guide.md
-- has the two statements an administrator runs instead). `ecom-pipeline db serve` gives it a password.
do $$
begin
    if not exists (select from pg_roles where rolname = 'ecom_bi')
       and exists (select from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
        create role ecom_bi nologin;
        alter role ecom_bi set default_transaction_read_only = on;
        alter role ecom_bi set statement_timeout = '5min';
    end if;
exception
    -- Another database of the server is migrated at the same moment and made the role first.
    when duplicate_object or unique_violation then null;
end
$$;

-- The flat views again, without names and e-mail (bi.sales below, on the star's fact view).
drop view bi.sales, bi.customers, bi.customer_history;

create view bi.customers as
select
    a.customer_id,
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

create view bi.customer_history as
select customer_id, city, state, country, segment as region, valid_from, valid_to, is_current
from warehouse.dim_customer
where customer_key > 0;

-- The star: what a Power BI or Tableau model is built on. Relate fact_sales to each dimension on its key.
create view bi.fact_sales as
select
    f.order_item_id,
    f.order_id,
    f.date_key,
    f.customer_key,
    f.product_key,
    f.status_key,
    f.payment_method_key,
    f.customer_id,
    f.product_id,
    f.order_ts as ordered_at,
    f.quantity,
    f.unit_price,
    f.discount_amount,
    f.line_total,
    f.cost_amount as cost,
    f.profit,
    (case when s.is_revenue then f.line_total else 0 end)::numeric(12, 2) as revenue,
    (case when s.is_revenue then f.profit else 0 end)::numeric(22, 2) as revenue_profit
from warehouse.fact_sales as f
join warehouse.dim_status as s on s.status_key = f.status_key;

-- The flat line view, on top of the star's fact view (the revenue rule is written once, there).
create view bi.sales as
select
    f.order_id,
    f.order_item_id,
    f.ordered_at,
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
    f.cost,
    f.profit,
    f.revenue,
    f.revenue_profit
from bi.fact_sales as f
join warehouse.dim_date as d on d.date_key = f.date_key
join warehouse.dim_customer as c on c.customer_key = f.customer_key
join warehouse.dim_product as p on p.product_key = f.product_key
join warehouse.dim_status as s on s.status_key = f.status_key
join warehouse.dim_payment_method as m on m.payment_method_key = f.payment_method_key;

create view bi.dim_customer as
select customer_key, customer_id, city, state, country, segment as region, valid_from, valid_to, is_current
from warehouse.dim_customer;

create view bi.dim_product as
select product_key, product_id, product_name, category, sub_category, brand, price, cost, price_band, valid_from,
       valid_to, is_current
from warehouse.dim_product;

create view bi.dim_date as
select date_key, full_date as calendar_date, year, quarter, month, month_name, iso_year, iso_week, day_of_month,
       day_of_week, day_name, is_weekend, is_holiday, holiday_name
from warehouse.dim_date;

create view bi.dim_status as
select status_key, status as order_status, lifecycle_stage, is_revenue as counts_as_revenue, is_final
from warehouse.dim_status;

create view bi.dim_payment_method as
select payment_method_key, payment_method as payment_method_code, display_name as payment_method,
       method_type as payment_type
from warehouse.dim_payment_method;

-- What each view is.
comment on view bi.sales is
    'One row per order line, with its date, customer, product, status and payment method already joined '
    '(the customer and product as they were when the order was placed). Flat: for tools without a model.';
comment on view bi.daily_sales is 'One row per day with orders: daily totals, fast for trends.';
comment on view bi.products is 'One row per product sold: totals, margin, return rate and revenue rank.';
comment on view bi.customers is
    'One row per customer who ordered: spend, RFM scores and segment, lifetime value (current address).';
comment on view bi.customer_history is
    'One row per version of a customer (SCD type 2): where they lived from valid_from to valid_to.';
comment on view bi.product_history is
    'One row per version of a product (SCD type 2): its name, category and price from valid_from to valid_to.';
comment on view bi.calendar is 'One row per day of the date range: a date table with weekends and holidays.';
comment on view bi.fact_sales is
    'Star schema fact: one row per order line, with the keys of its dimensions and its amounts. Relate it to '
    'dim_date, dim_customer, dim_product, dim_status and dim_payment_method on the *_key columns.';
comment on view bi.dim_customer is
    'Star schema dimension: one row per version of a customer (SCD type 2); key 0 is the unknown customer.';
comment on view bi.dim_product is
    'Star schema dimension: one row per version of a product (SCD type 2); key 0 is the unknown product.';
comment on view bi.dim_date is 'Star schema dimension: one row per day; mark it as the date table.';
comment on view bi.dim_status is 'Star schema dimension: one row per order status, and whether it counts as revenue.';
comment on view bi.dim_payment_method is 'Star schema dimension: one row per payment method.';

-- What each column is: one description per column name, for every view that has it; the few columns
-- whose meaning depends on the view get theirs below.
create temporary table column_notes (column_name text primary key, note text not null) on commit drop;
insert into column_notes values
    ('order_id', 'The order''s id in the shop''s system.'),
    ('order_item_id', 'The order line''s id in the shop''s system; one row per line in the fact.'),
    ('ordered_at', 'When the order was placed (UTC).'),
    ('order_date', 'The day the order was placed (UTC).'),
    ('calendar_date', 'The day.'),
    ('sales_date', 'The day.'),
    ('date_key', 'The day as a number, YYYYMMDD: joins fact_sales to dim_date.'),
    ('customer_key', 'The customer version''s surrogate key: joins fact_sales to dim_customer.'),
    ('product_key', 'The product version''s surrogate key: joins fact_sales to dim_product.'),
    ('status_key', 'The order status''s key: joins fact_sales to dim_status.'),
    ('payment_method_key', 'The payment method''s key: joins fact_sales to dim_payment_method.'),
    ('year', 'Calendar year.'),
    ('quarter', 'Calendar quarter, 1 to 4.'),
    ('month', 'Calendar month, 1 to 12.'),
    ('month_name', 'Month name, January to December.'),
    ('iso_year', 'ISO 8601 week-numbering year.'),
    ('iso_week', 'ISO 8601 week of the year, 1 to 53.'),
    ('day_of_month', 'Day of the month, 1 to 31.'),
    ('day_of_week', 'ISO day of the week: 1 is Monday, 7 is Sunday.'),
    ('day_name', 'Day name, Monday to Sunday.'),
    ('is_weekend', 'True on Saturday and Sunday.'),
    ('is_holiday', 'True on a public holiday of the country set by warehouse.holiday_country.'),
    ('holiday_name', 'The public holiday''s name, empty on other days.'),
    ('customer_id', 'The customer''s id in the shop''s system.'),
    ('city', 'The customer''s city.'),
    ('state', 'The customer''s state (two-letter code).'),
    ('country', 'The customer''s country.'),
    ('region', 'The US census region of the customer''s state: Northeast, Midwest, South, West or Other.'),
    ('product_id', 'The product''s id in the shop''s system.'),
    ('product_name', 'The product''s name.'),
    ('category', 'The product''s category.'),
    ('sub_category', 'The product''s sub-category.'),
    ('brand', 'The product''s brand.'),
    ('price', 'The product''s list price in this version (shop currency).'),
    ('cost', 'What the shop pays for the product (shop currency).'),
    ('price_band', 'The product''s price band within its category: budget, mid or premium (thirds by price).'),
    ('order_status', 'The order''s status: pending, processing, shipped, delivered, cancelled or returned.'),
    ('lifecycle_stage', 'Where the status sits in an order''s life: open, in transit, completed or reversed.'),
    ('counts_as_revenue', 'True for statuses whose lines count as revenue (not cancelled, not returned).'),
    ('is_final', 'True for statuses an order does not leave: delivered, cancelled, returned.'),
    ('payment_method', 'How the order was paid, as shown to people (Credit card, UPI, ...).'),
    ('payment_method_code', 'How the order was paid, as the shop''s system names it (credit_card, upi, ...).'),
    ('payment_type', 'online or offline (cash on delivery).'),
    ('quantity', 'Units on the order line.'),
    ('unit_price', 'Price of one unit when ordered (shop currency).'),
    ('discount_amount', 'Discount on the line (shop currency).'),
    ('line_total', 'The line''s amount after discount, whatever its status (shop currency).'),
    ('profit', 'line_total minus the cost of the product version sold (shop currency).'),
    ('revenue', 'line_total when the status counts as revenue, else 0 (shop currency). Sum it for revenue.'),
    ('revenue_profit', 'profit when the status counts as revenue, else 0 (shop currency).'),
    ('valid_from', 'Start of this version (UTC); 1900-01-01 for the first version.'),
    ('valid_to', 'End of this version (UTC, exclusive); 9999-12-31 while current.'),
    ('is_current', 'True for the version that holds now.'),
    ('orders', 'Orders with a status that counts as revenue.'),
    ('orders_placed', 'Every order placed that day, whatever its status.'),
    ('items_sold', 'Units sold on revenue orders.'),
    ('unique_customers', 'Customers with an order that day.'),
    ('avg_order_value', 'Revenue divided by orders (shop currency).'),
    ('cancelled_orders', 'Orders placed that day and now cancelled.'),
    ('returned_orders', 'Orders placed that day and now returned.'),
    ('current_price', 'The product''s list price now (shop currency).'),
    ('current_cost', 'The product''s cost now (shop currency).'),
    ('units_sold', 'Units sold on revenue orders.'),
    ('margin', 'profit divided by revenue, 0 to 1.'),
    ('avg_discount_pct', 'Average discount of the product''s lines, in percent.'),
    ('return_rate', 'Share of the product''s orders returned, 0 to 1.'),
    ('revenue_rank', 'The product''s rank by revenue, 1 is the highest.'),
    ('total_spent', 'The customer''s revenue to date (shop currency).'),
    ('first_purchase', 'The customer''s first revenue order (UTC).'),
    ('last_purchase', 'The customer''s latest revenue order (UTC).'),
    ('days_since_last_purchase', 'Days from the latest revenue order to the newest order in the data.'),
    ('recency_score', 'RFM recency quintile, 5 is the most recent.'),
    ('frequency_score', 'RFM frequency quintile, 5 is the most frequent.'),
    ('monetary_score', 'RFM spend quintile, 5 is the highest spend.'),
    ('rfm_segment', 'The customer''s RFM segment: Champions, Loyal, New, At Risk, Hibernating or Potential.'),
    ('lifetime_value', 'The customer''s revenue to date (shop currency).');

do $$
declare
    col record;
begin
    for col in
        select c.table_name, c.column_name, n.note
        from information_schema.columns as c
        join column_notes as n using (column_name)
        where c.table_schema = 'bi'
    loop
        execute format('comment on column bi.%I.%I is %L', col.table_name, col.column_name, col.note);
    end loop;
end
$$;

comment on column bi.daily_sales.revenue is 'Revenue of the day''s orders (shop currency).';
comment on column bi.daily_sales.profit is 'Profit of the day''s revenue orders (shop currency).';
comment on column bi.daily_sales.orders_placed is 'Every order placed that day, whatever its status.';
comment on column bi.products.orders is 'Revenue orders with the product.';
comment on column bi.products.revenue is 'The product''s revenue (shop currency).';
comment on column bi.products.profit is 'The product''s profit on revenue orders (shop currency).';
comment on column bi.customers.orders is 'The customer''s revenue orders.';
comment on column bi.product_history.price is 'The product''s list price in this version (shop currency).';
comment on column bi.sales.cost is 'What the shop paid for the units of the line (shop currency).';
comment on column bi.fact_sales.cost is 'What the shop paid for the units of the line (shop currency).';

-- The BI role reads `bi` and nothing else (a view reads the warehouse with its owner's rights).
do $$
begin
    if exists (select from pg_roles where rolname = 'ecom_bi') then
        grant usage on schema bi to ecom_bi;
        grant select on all tables in schema bi to ecom_bi;
        alter default privileges in schema bi grant select on tables to ecom_bi;
    end if;
end
$$;
