-- Revenue by state and region, where the customer lived when ordering (the SCD2 version of the order).
-- Reads analytics_orders, the temp table analytics/orders.sql makes.
with orders as (
    select c.segment as region, coalesce(c.state, '(unknown)') as state, o.customer_id, o.amount
    from analytics_orders as o
    join warehouse.dim_customer as c on c.customer_key = o.customer_key
    where o.is_revenue
),

states as (
    select o.region, o.state, count(*) as orders, sum(o.amount) as revenue
    from orders as o
    group by o.region, o.state
),

buyers as (
    -- Distinct customers by hashing (state, customer) pairs: cheaper than count(distinct), which sorts.
    select b.region, b.state, count(*) as customers
    from (select distinct o.region, o.state, o.customer_id from orders as o) as b
    group by b.region, b.state
)

select
    s.region,
    s.state,
    b.customers,
    s.orders,
    s.revenue,
    round(s.revenue / nullif(sum(s.revenue) over (), 0), 4) as revenue_share,
    round(s.revenue / s.orders, 2) as avg_order_value
from states as s
join buyers as b on b.region = s.region and b.state = s.state
order by s.revenue desc, s.state
