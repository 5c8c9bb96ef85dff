-- The order-level working table the order analyses read: one row per order, its lines summed.
-- Built once per run (a temporary table), so the fact table is scanned once for all of them.
create temp table analytics_orders on commit drop as
select
    f.order_id,
    f.customer_id,
    f.customer_key,
    f.date_key,
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

analyze analytics_orders;
