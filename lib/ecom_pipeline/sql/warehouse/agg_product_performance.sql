-- Product performance for the products whose facts this load wrote; ranks are refreshed for all.
create temp table touched_products on commit drop as
select distinct product_id from warehouse.fact_sales where loaded_at = now();

delete from warehouse.agg_product_performance where product_id in (select product_id from touched_products);

analyze touched_products;

with lines as (
    -- One row per product and order first, so the product's figures are plain sums and counts.
    select
        f.product_id collate "C" as product_id,  -- grouped byte by byte: the same groups, sorted faster
        f.order_id collate "C" as order_id,
        s.status,
        s.is_revenue,
        sum(f.quantity) as quantity,
        sum(f.line_total) as revenue,
        sum(f.profit) as profit,
        sum(f.discount_amount) as discount,
        sum(f.quantity * f.unit_price) as gross,
        count(*) as line_count
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.product_id in (select product_id from touched_products)
    group by 1, 2, 3, 4
),

final as (
    select
        l.product_id,
        coalesce(p.product_name, '(unknown)') as product_name,
        coalesce(p.category, 'Unknown') as category,
        coalesce(sum(l.quantity) filter (where l.is_revenue), 0) as quantity,
        coalesce(sum(l.revenue) filter (where l.is_revenue), 0) as revenue,
        coalesce(sum(l.profit) filter (where l.is_revenue), 0) as profit,
        round(sum(l.profit) filter (where l.is_revenue) / nullif(sum(l.revenue) filter (where l.is_revenue), 0), 4)
            as margin,
        round(100 * sum(l.discount) / nullif(sum(l.gross), 0), 2) as avg_discount_pct,
        count(*) filter (where l.is_revenue) as orders,
        round(count(*) filter (where l.status = 'returned')::numeric / count(*), 4) as return_rate,
        null::integer as revenue_rank
    from lines as l
    left join warehouse.dim_product as p on p.product_id = l.product_id and p.is_current
    group by l.product_id, p.product_name, p.category
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
