-- RFM segments of the customers who bought (scores and segments are computed in agg_customer_metrics).
select
    a.rfm_segment,
    count(*) as customers,
    round(count(*)::numeric / sum(count(*)) over (), 4) as customer_share,
    sum(a.total_spent) as revenue,
    round(sum(a.total_spent) / nullif(sum(sum(a.total_spent)) over (), 0), 4) as revenue_share,
    round(avg(a.days_since_last_purchase), 1) as avg_days_since_last_purchase,
    round(avg(a.orders), 2) as avg_orders,
    round(avg(a.total_spent), 2) as avg_spent
from warehouse.agg_customer_metrics as a
where a.orders > 0
group by a.rfm_segment
order by revenue desc, a.rfm_segment
