-- Revenue per category and calendar month (the dashboard's category selector).
select
    date_trunc('month', d.full_date)::date as month,
    p.category,
    sum(f.line_total) as revenue,
    sum(f.profit) as profit,
    count(distinct f.order_id) as orders
from warehouse.fact_sales as f
join warehouse.dim_product as p on p.product_key = f.product_key
join warehouse.dim_status as s on s.status_key = f.status_key
join warehouse.dim_date as d on d.date_key = f.date_key
where s.is_revenue
group by 1, 2
order by 1, 2
