-- Product performance for the products whose facts this load wrote; ranks are refreshed for all.
create unlogged table work.touched_products as
select distinct product_id from warehouse.fact_sales where loaded_at = :loaded_at;

delete from warehouse.agg_product_performance where product_id in (select product_id from work.touched_products);

analyze work.touched_products;

with lines as (
    -- The product's lines, grouped once: an order's lines share its status, so orders are counted as
    -- distinct order ids. Ids compared byte by byte ("C"): the same groups, sorted faster.
    select
        f.product_id collate "C" as product_id,
        f.order_id collate "C" as order_id,
        s.status,
        s.is_revenue,
        f.quantity,
        f.line_total,
        f.profit,
        f.discount_amount,
        f.quantity * f.unit_price as gross
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.product_id in (select product_id from work.touched_products)
),

products as (
    select
        l.product_id,
        coalesce(sum(l.quantity) filter (where l.is_revenue), 0) as quantity,
        coalesce(sum(l.line_total) filter (where l.is_revenue), 0) as revenue,
        coalesce(sum(l.profit) filter (where l.is_revenue), 0) as profit,
        round(sum(l.profit) filter (where l.is_revenue) / nullif(sum(l.line_total) filter (where l.is_revenue), 0), 4)
            as margin,
        round(100 * sum(l.discount_amount) / nullif(sum(l.gross), 0), 2) as avg_discount_pct,
        count(distinct l.order_id) filter (where l.is_revenue) as orders,
        round(count(distinct l.order_id) filter (where l.status = 'returned')::numeric / count(distinct l.order_id), 4)
            as return_rate
    from lines as l
    group by l.product_id
),

final as (
    select
        a.product_id,
        coalesce(p.product_name, '(unknown)') as product_name,
        coalesce(p.category, 'Unknown') as category,
        a.quantity,
        a.revenue,
        a.profit,
        a.margin,
        a.avg_discount_pct,
        a.orders,
        a.return_rate,
        null::integer as revenue_rank
    from products as a
    left join warehouse.dim_product as p on p.product_id = a.product_id and p.is_current
)

insert into warehouse.agg_product_performance
select * from final;

update warehouse.agg_product_performance as a
set revenue_rank = r.revenue_rank
from (
    select product_id, rank() over (order by revenue desc, product_id) as revenue_rank
    from warehouse.agg_product_performance
) as r
where a.product_id = r.product_id and a.revenue_rank is distinct from r.revenue_rank;
