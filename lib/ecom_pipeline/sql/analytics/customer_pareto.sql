-- The Pareto curve of customer value: the share of revenue brought by the top 5%, 10%, ... 100% of the
-- customers who bought (the top k% being the ceil(k% x customers) customers who spent most).
with ranked as (
    select
        row_number() over by_value as position,
        sum(a.lifetime_value) over by_value as running_revenue,
        sum(a.lifetime_value) over () as revenue
    from warehouse.agg_customer_metrics as a
    where a.orders > 0
    window by_value as (order by a.lifetime_value desc, a.customer_id collate "C" rows unbounded preceding)
),

steps as (
    select
        round(step / 20.0, 2) as customer_share,
        t.customers,
        ceil(step * t.customers / 20.0)::bigint as position
    from generate_series(1, 20) as step
    cross join (select count(*) as customers from ranked) as t
)

select
    s.customer_share,
    s.customers,
    r.position as top_customers,
    r.running_revenue as revenue,
    round(r.running_revenue / nullif(r.revenue, 0), 4) as revenue_share
from steps as s
join ranked as r on r.position = s.position
order by s.customer_share
