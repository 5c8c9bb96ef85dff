-- Every product sold: revenue, profit and margin, ranked by profit.
select
    rank() over (order by a.profit desc, a.product_id) as profit_rank,
    a.product_id,
    a.product_name,
    a.category,
    p.sub_category,
    p.price_band,
    a.quantity,
    a.revenue,
    a.profit,
    a.margin,
    a.avg_discount_pct,
    a.return_rate
from warehouse.agg_product_performance as a
left join warehouse.dim_product as p on p.product_id = a.product_id and p.is_current
where a.revenue > 0
order by profit_rank
