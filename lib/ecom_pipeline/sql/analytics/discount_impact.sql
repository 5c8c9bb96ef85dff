-- Order lines by discount given: units per line, revenue and margin (revenue statuses).
-- Reads analytics_lines, the temp table analytics/orders.sql makes.
select
    l.discount_pct,
    sum(l.lines) as lines,
    round(sum(l.lines) / sum(sum(l.lines)) over (), 4) as line_share,
    round(sum(l.quantity) / sum(l.lines), 3) as units_per_line,
    sum(l.list_value) - sum(l.amount) as discount_given,
    sum(l.amount) as revenue,
    sum(l.profit) as profit,
    round(sum(l.profit) / nullif(sum(l.amount), 0), 4) as margin
from analytics_lines as l
where l.is_revenue
group by l.discount_pct
order by l.discount_pct
