-- Revenue per category and calendar month (the dashboard's category selector).
-- Reads analytics_lines, the temp table analytics/orders.sql makes.
select
    l.month,
    l.category,
    sum(l.amount) as revenue,
    sum(l.profit) as profit,
    sum(l.lines) as lines
from analytics_lines as l
where l.is_revenue
group by l.month, l.category
order by l.month, l.category
