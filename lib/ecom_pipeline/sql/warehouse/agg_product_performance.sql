-- Product performance for the products whose facts this load wrote; ranks are refreshed for all.
create temp table touched_products on commit drop as
select distinct product_id from warehouse.fact_sales where loaded_at = now();

delete from warehouse.agg_product_performance where product_id in (select product_id from touched_products);

with facts as (
    select f.*, s.status, s.is_revenue
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.product_id in (select product_id from touched_products)
),

final as (
    select
        f.product_id,
        coalesce(p.product_name, '(unknown)') as product_name,
        coalesce(p.category, 'Unknown') as category,
        coalesce(sum(f.quantity) filter (where f.is_revenue), 0) as quantity,
        coalesce(sum(f.line_total) filter (where f.is_revenue), 0) as revenue,
        coalesce(sum(f.profit) filter (where f.is_revenue), 0) as profit,
        round(sum(f.profit) filter (where f.is_revenue) / nullif(sum(f.line_total) filter (where f.is_revenue), 0), 4)
            as margin,
        round(avg(100 * f.discount_amount / nullif(f.quantity * f.unit_price, 0)), 2) as avg_discount_pct,
        count(distinct f.order_id) filter (where f.is_revenue) as orders,
        round(count(distinct f.order_id) filter (where f.status = 'returned')::numeric
              / nullif(count(distinct f.order_id), 0), 4) as return_rate,
        null::integer as revenue_rank
    from facts as f
    left join warehouse.dim_product as p on p.product_id = f.product_id and p.is_current
    group by f.product_id, p.product_name, p.category
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
