-- The products that bring the most revenue, with what they are.
select
    a.revenue_rank,
    a.product_id,
    a.product_name,
    a.category,
    p.sub_category,
    p.brand,
    a.quantity,
    a.orders,
    a.revenue,
    a.profit,
    a.margin
from warehouse.agg_product_performance as a
left join warehouse.dim_product as p on p.product_id = a.product_id and p.is_current
where a.revenue > 0
order by a.revenue_rank, a.product_id
limit :top_n
