-- Revenue and orders per day (the dashboard's time series).
select
    a.full_date,
    d.is_weekend,
    d.is_holiday,
    a.orders,
    a.revenue,
    a.profit,
    a.avg_order_value
from warehouse.agg_daily_sales as a
join warehouse.dim_date as d on d.date_key = a.date_key
order by a.full_date
