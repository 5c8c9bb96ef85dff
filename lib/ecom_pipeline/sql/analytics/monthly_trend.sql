-- Revenue, orders and buying customers per calendar month.
-- Reads analytics_orders, the temp table analytics/orders.sql makes.
with months as (
    select
        o.month,
        count(*) as orders_placed,
        count(*) filter (where o.is_revenue) as orders,
        coalesce(sum(o.amount) filter (where o.is_revenue), 0) as revenue,
        coalesce(sum(o.profit) filter (where o.is_revenue), 0) as profit,
        round(avg(o.amount) filter (where o.is_revenue), 2) as avg_order_value,
        count(*) filter (where o.status = 'cancelled') as cancelled_orders,
        count(*) filter (where o.status = 'returned') as returned_orders
    from analytics_orders as o
    group by o.month
),

buyers as (
    -- Distinct customers by hashing (month, customer) pairs: cheaper than count(distinct), which sorts.
    select b.month, count(*) as customers
    from (select distinct o.month, o.customer_id from analytics_orders as o where o.is_revenue) as b
    group by b.month
)

select
    m.month,
    m.orders_placed,
    m.orders,
    m.revenue,
    m.profit,
    m.avg_order_value,
    coalesce(b.customers, 0) as customers,
    m.cancelled_orders,
    m.returned_orders
from months as m
left join buyers as b on b.month = m.month
order by m.month
