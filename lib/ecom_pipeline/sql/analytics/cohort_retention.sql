-- Customers by the month of their first purchase (revenue statuses), and the share of each cohort
-- buying again 0, 1, 2, ... months later.
-- Reads analytics_orders, the temp table analytics/orders.sql makes.
with purchases as (
    select o.customer_id, o.month
    from analytics_orders as o
    where o.is_revenue
    group by o.customer_id, o.month
),

cohorts as (
    select p.customer_id, min(p.month) as cohort_month
    from purchases as p
    group by p.customer_id
),

active as (
    select
        c.cohort_month,
        ((extract(year from p.month) - extract(year from c.cohort_month)) * 12
         + extract(month from p.month) - extract(month from c.cohort_month))::integer as months_since,
        count(*) as customers
    from purchases as p
    join cohorts as c on c.customer_id = p.customer_id
    group by 1, 2
)

select
    a.cohort_month,
    a.months_since,
    a.customers,
    first_value(a.customers) over (partition by a.cohort_month order by a.months_since) as cohort_size,
    round(a.customers::numeric / first_value(a.customers) over (partition by a.cohort_month order by a.months_since),
          4) as retention
from active as a
order by a.cohort_month, a.months_since
