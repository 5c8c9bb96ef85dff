-- Categories as sold: each line counts under the product version valid when it was ordered.
with lines as (
    select
        p.category,
        f.order_id,
        s.is_revenue,
        f.quantity,
        f.line_total,
        f.profit
    from warehouse.fact_sales as f
    join warehouse.dim_product as p on p.product_key = f.product_key
    join warehouse.dim_status as s on s.status_key = f.status_key
)

select
    l.category,
    count(*) as lines,
    round(count(*)::numeric / sum(count(*)) over (), 4) as line_share,
    count(distinct l.order_id) filter (where l.is_revenue) as orders,
    coalesce(sum(l.quantity) filter (where l.is_revenue), 0) as quantity,
    coalesce(sum(l.line_total) filter (where l.is_revenue), 0) as revenue,
    round(sum(l.line_total) filter (where l.is_revenue)
          / nullif(sum(sum(l.line_total) filter (where l.is_revenue)) over (), 0), 4) as revenue_share,
    coalesce(sum(l.profit) filter (where l.is_revenue), 0) as profit,
    round(sum(l.profit) filter (where l.is_revenue) / nullif(sum(l.line_total) filter (where l.is_revenue), 0), 4)
        as margin
from lines as l
group by l.category
order by revenue desc, l.category
