-- Revenue by state and region, where the customer lived when ordering (the SCD2 version of the order).
select
    c.segment as region,
    coalesce(c.state, '(unknown)') as state,
    count(distinct o.customer_id) as customers,
    count(*) as orders,
    sum(o.amount) as revenue,
    round(sum(o.amount) / nullif(sum(sum(o.amount)) over (), 0), 4) as revenue_share,
    round(avg(o.amount), 2) as avg_order_value
from analytics_orders as o
join warehouse.dim_customer as c on c.customer_key = o.customer_key
where o.is_revenue
group by c.segment, c.state
order by revenue desc, state
