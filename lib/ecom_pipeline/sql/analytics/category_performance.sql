-- Categories as sold: each line counts under the product version valid when it was ordered.
-- Lines count every status (what was ordered); the sales measures count revenue statuses only.
-- Reads analytics_lines, the temp table analytics/orders.sql makes.
select
    l.category,
    sum(l.lines) as lines,
    round(sum(l.lines) / sum(sum(l.lines)) over (), 4) as line_share,
    coalesce(sum(l.quantity) filter (where l.is_revenue), 0) as quantity,
    coalesce(sum(l.amount) filter (where l.is_revenue), 0) as revenue,
    round(sum(l.amount) filter (where l.is_revenue)
          / nullif(sum(sum(l.amount) filter (where l.is_revenue)) over (), 0), 4) as revenue_share,
    coalesce(sum(l.profit) filter (where l.is_revenue), 0) as profit,
    round(sum(l.profit) filter (where l.is_revenue) / nullif(sum(l.amount) filter (where l.is_revenue), 0), 4)
        as margin
from analytics_lines as l
group by l.category
order by revenue desc, l.category
