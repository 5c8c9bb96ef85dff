-- Customers by the month of their first purchase (revenue statuses), and the share of each cohort
-- buying again 0, 1, 2, ... months later.
with purchases as (
    select distinct o.customer_id, date_trunc('month', d.full_date)::date as month
    from analytics_orders as o
    join warehouse.dim_date as d on d.date_key = o.date_key
    where o.is_revenue
),

cohorts as (
    select
        p.customer_id,
        p.month,
        min(p.month) over (partition by p.customer_id) as cohort_month
    from purchases as p
),

active as (
    select
        c.cohort_month,
        ((extract(year from c.month) - extract(year from c.cohort_month)) * 12
         + extract(month from c.month) - extract(month from c.cohort_month))::integer as months_since,
        count(*) as customers
    from cohorts as c
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
