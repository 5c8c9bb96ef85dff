-- How orders are paid: share of all orders placed, and of revenue.
-- Reads analytics_orders, the temp table analytics/orders.sql makes.
select
    m.payment_method,
    m.display_name,
    m.method_type,
    count(*) as orders_placed,
    round(count(*)::numeric / sum(count(*)) over (), 4) as order_share,
    coalesce(sum(o.amount) filter (where o.is_revenue), 0) as revenue,
    round(sum(o.amount) filter (where o.is_revenue)
          / nullif(sum(sum(o.amount) filter (where o.is_revenue)) over (), 0), 4) as revenue_share,
    round(avg(o.amount) filter (where o.is_revenue), 2) as avg_order_value,
    round(count(*) filter (where o.status = 'cancelled')::numeric / count(*), 4) as cancel_rate
from analytics_orders as o
join warehouse.dim_payment_method as m on m.payment_method_key = o.payment_method_key
group by m.payment_method, m.display_name, m.method_type
order by orders_placed desc, m.payment_method
