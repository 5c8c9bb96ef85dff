-- Customers by how much they have spent in all (revenue statuses), with the revenue each band brings.
with banded as (
    select
        a.customer_id,
        a.total_spent,
        case
            when a.total_spent = 0 then 0
            when a.total_spent < 100 then 1
            when a.total_spent < 500 then 2
            when a.total_spent < 1000 then 3
            when a.total_spent < 5000 then 4
            else 5
        end as band
    from warehouse.agg_customer_metrics as a
)

select
    b.band as band_order,
    (array['no purchase', 'under 100', '100 to 500', '500 to 1,000', '1,000 to 5,000', '5,000 and over'])[b.band + 1]
        as spend_band,
    count(*) as customers,
    sum(b.total_spent) as revenue,
    round(sum(b.total_spent) / nullif(sum(sum(b.total_spent)) over (), 0), 4) as revenue_share,
    round(count(*)::numeric / sum(count(*)) over (), 4) as customer_share
from banded as b
group by b.band
order by b.band
