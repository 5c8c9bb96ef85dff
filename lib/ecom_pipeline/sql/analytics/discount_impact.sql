-- Order lines by discount given: units per line, revenue and margin (revenue statuses).
with lines as (
    select
        round(100 * f.discount_amount / nullif(f.quantity * f.unit_price, 0))::integer as discount_pct,
        f.quantity,
        f.quantity * f.unit_price as list_value,
        f.line_total,
        f.profit
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where s.is_revenue
)

select
    coalesce(l.discount_pct, 0) as discount_pct,
    count(*) as lines,
    round(count(*)::numeric / sum(count(*)) over (), 4) as line_share,
    round(avg(l.quantity), 3) as units_per_line,
    sum(l.list_value) - sum(l.line_total) as discount_given,
    sum(l.line_total) as revenue,
    sum(l.profit) as profit,
    round(sum(l.profit) / nullif(sum(l.line_total), 0), 4) as margin
from lines as l
group by 1
order by 1
