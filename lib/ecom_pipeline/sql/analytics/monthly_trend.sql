-- Revenue, orders and customers per calendar month.
select
    date_trunc('month', d.full_date)::date as month,
    count(*) as orders_placed,
    count(*) filter (where o.is_revenue) as orders,
    coalesce(sum(o.amount) filter (where o.is_revenue), 0) as revenue,
    coalesce(sum(o.profit) filter (where o.is_revenue), 0) as profit,
    round(avg(o.amount) filter (where o.is_revenue), 2) as avg_order_value,
    count(distinct o.customer_id) filter (where o.is_revenue) as customers,
    count(*) filter (where o.status = 'cancelled') as cancelled_orders,
    count(*) filter (where o.status = 'returned') as returned_orders
from analytics_orders as o
join warehouse.dim_date as d on d.date_key = o.date_key
group by 1
order by 1
