-- The Pareto curve of customer value: the share of revenue brought by the top 5%, 10%, ... 100% of the
-- customers who bought (the top k% being the ceil(k% x customers) customers who spent most).
with ranked as (
    select
        row_number() over by_value as position,
        count(*) over () as customers,
        sum(a.lifetime_value) over by_value as running_revenue,
        sum(a.lifetime_value) over () as revenue
    from warehouse.agg_customer_metrics as a
    where a.orders > 0
    window by_value as (order by a.lifetime_value desc, a.customer_id rows unbounded preceding)
),

steps as (
    select round(step / 20.0, 2) as customer_share from generate_series(1, 20) as step
)

select
    s.customer_share,
    r.customers,
    r.position as top_customers,
    r.running_revenue as revenue,
    round(r.running_revenue / nullif(r.revenue, 0), 4) as revenue_share
from steps as s
join ranked as r on r.position = ceil(s.customer_share * r.customers)
order by s.customer_share
