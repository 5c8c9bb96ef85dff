-- The working tables the analyses read, built once per run (temporary, gone with the transaction), so
-- the fact table is scanned twice in all: once at order grain, once grouped for the line analyses.

-- One row per order, its lines summed. Every line of an order shares its date, customer version,
-- payment method and status.
create temp table analytics_orders on commit drop as
select
    f.order_id,
    f.customer_id,
    f.customer_key,
    f.date_key,
    make_date(f.date_key / 10000, f.date_key / 100 % 100, 1) as month,
    f.payment_method_key,
    s.status,
    s.is_revenue,
    count(*) as lines,
    sum(f.quantity) as quantity,
    sum(f.line_total) as amount,
    sum(f.profit) as profit
from warehouse.fact_sales as f
join warehouse.dim_status as s on s.status_key = f.status_key
group by f.order_id, f.customer_id, f.customer_key, f.date_key, f.payment_method_key, s.status, s.is_revenue;

-- Order lines by month, category as sold (the product version of the order) and discount given.
-- A few hundred groups, but the planner cannot know that of these expressions and would sort every
-- line to group them: hashing is twice as fast here.
set local enable_sort = off;

create temp table analytics_lines on commit drop as
select
    make_date(f.date_key / 10000, f.date_key / 100 % 100, 1) as month,
    p.category,
    coalesce(
        round(100 * f.discount_amount::float8 / nullif(f.quantity * f.unit_price::float8, 0))::integer, 0
    ) as discount_pct,
    s.is_revenue,
    count(*) as lines,
    sum(f.quantity) as quantity,
    sum(f.quantity * f.unit_price) as list_value,
    sum(f.line_total) as amount,
    sum(f.profit) as profit
from warehouse.fact_sales as f
join warehouse.dim_product as p on p.product_key = f.product_key
join warehouse.dim_status as s on s.status_key = f.status_key
group by 1, 2, 3, 4;

set local enable_sort = on;

analyze analytics_orders;
analyze analytics_lines;
