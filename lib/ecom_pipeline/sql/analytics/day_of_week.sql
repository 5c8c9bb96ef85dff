-- Each day of the week: how many such days the data covers, and the average day's orders and revenue.
with span as (
    select min(full_date) as first_date, max(full_date) as last_date from warehouse.agg_daily_sales
)

select
    d.day_of_week,
    d.day_name,
    d.is_weekend,
    count(*) as days,
    coalesce(sum(a.orders), 0) as orders_placed,
    coalesce(sum(a.revenue), 0) as revenue,
    round(coalesce(sum(a.orders), 0)::numeric / count(*), 2) as orders_per_day,
    round(coalesce(sum(a.revenue), 0) / count(*), 2) as revenue_per_day
from warehouse.dim_date as d
cross join span as s
left join warehouse.agg_daily_sales as a on a.date_key = d.date_key
where d.full_date between s.first_date and s.last_date
group by d.day_of_week, d.day_name, d.is_weekend
order by d.day_of_week
