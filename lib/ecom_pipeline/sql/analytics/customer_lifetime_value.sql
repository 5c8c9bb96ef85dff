-- Customers who bought, in ten equal groups by lifetime value (decile 1 = the most valuable tenth),
-- with each group's and the running share of revenue: the Pareto curve of customer value.
with ranked as (
    select
        a.customer_id,
        a.lifetime_value,
        a.orders,
        ntile(10) over (order by a.lifetime_value desc, a.customer_id collate "C") as decile
    from warehouse.agg_customer_metrics as a
    where a.orders > 0
),

deciles as (
    select
        r.decile,
        count(*) as customers,
        min(r.lifetime_value) as min_value,
        max(r.lifetime_value) as max_value,
        round(avg(r.lifetime_value), 2) as avg_value,
        round(avg(r.orders), 2) as avg_orders,
        sum(r.lifetime_value) as revenue
    from ranked as r
    group by r.decile
)

select
    d.*,
    round(d.revenue / sum(d.revenue) over (), 4) as revenue_share,
    round(sum(d.revenue) over (order by d.decile) / sum(d.revenue) over (), 4) as cumulative_share
from deciles as d
order by d.decile
