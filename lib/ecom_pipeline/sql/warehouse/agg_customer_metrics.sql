-- Customer metrics for the customers whose facts this load wrote; recency and the RFM scores, which are
-- relative to all customers and to the newest order in the warehouse, are refreshed for all.
create unlogged table work.touched_customers as
select distinct customer_id from warehouse.fact_sales where loaded_at = :loaded_at;

delete from warehouse.agg_customer_metrics where customer_id in (select customer_id from work.touched_customers);

analyze work.touched_customers;

with lines as (
    -- The customer's lines, grouped once: an order's lines share its time and status, so orders are counted
    -- as distinct order ids and an order's value is the revenue over them. Ids compared byte by byte ("C").
    select
        f.customer_id collate "C" as customer_id,
        f.order_id collate "C" as order_id,
        f.order_ts,
        s.is_revenue,
        f.line_total
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.customer_id in (select customer_id from work.touched_customers)
),

customers as (
    select
        l.customer_id,
        count(distinct l.order_id) filter (where l.is_revenue) as orders,
        coalesce(sum(l.line_total) filter (where l.is_revenue), 0) as total_spent,
        min(l.order_ts) filter (where l.is_revenue) as first_purchase,
        max(l.order_ts) filter (where l.is_revenue) as last_purchase
    from lines as l
    group by l.customer_id
),

final as (
    select
        c.customer_id,
        c.orders,
        c.total_spent,
        round(c.total_spent / nullif(c.orders, 0), 2) as avg_order_value,
        c.first_purchase,
        c.last_purchase,
        null::integer as days_since_last_purchase,
        null::smallint as recency_score,
        null::smallint as frequency_score,
        null::smallint as monetary_score,
        null::text as rfm_segment,
        -- Historical lifetime value: everything the customer has paid for.
        c.total_spent as lifetime_value
    from customers as c
)

insert into warehouse.agg_customer_metrics
select * from final;

with as_of as (
    select max(order_ts) as newest_order from warehouse.fact_sales
),

scores as (
    select
        a.customer_id,
        extract(day from o.newest_order - a.last_purchase)::integer as days_since_last_purchase,
        ntile(5) over (order by a.last_purchase nulls first, a.customer_id)::smallint as recency_score,
        ntile(5) over (order by a.orders, a.customer_id)::smallint as frequency_score,
        ntile(5) over (order by a.total_spent, a.customer_id)::smallint as monetary_score
    from warehouse.agg_customer_metrics as a
    cross join as_of as o
),

final as (
    select
        s.*,
        case
            when s.recency_score >= 4 and s.frequency_score >= 4 then 'Champions'
            when s.frequency_score >= 4 then 'Loyal'
            when s.recency_score >= 4 and s.frequency_score <= 2 then 'New'
            when s.recency_score <= 2 and s.frequency_score >= 3 then 'At Risk'
            when s.recency_score <= 2 then 'Hibernating'
            else 'Potential'
        end as rfm_segment
    from scores as s
)

update warehouse.agg_customer_metrics as a
set days_since_last_purchase = f.days_since_last_purchase,
    recency_score = f.recency_score,
    frequency_score = f.frequency_score,
    monetary_score = f.monetary_score,
    rfm_segment = f.rfm_segment
from final as f
where a.customer_id = f.customer_id
  and (a.days_since_last_purchase, a.recency_score, a.frequency_score, a.monetary_score, a.rfm_segment)
      is distinct from (f.days_since_last_purchase, f.recency_score, f.frequency_score, f.monetary_score,
                        f.rfm_segment);
