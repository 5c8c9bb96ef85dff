-- Per layer: the newest order (event time) and the newest load (load time). Only the newest batch's
-- staging partition is read (its raw text; orders dated in the future are defects the clean stage
-- quarantines, so they do not count), and the warehouse's newest day comes from its date index.
with newest_batch as (
    select batch_id, loaded_at from staging.batches where status = 'loaded' order by batch_id desc limit 1
),

staged as (
    -- The newest few dates by their text (ISO dates sort as text), not in the future, then the newest of
    -- those that really are timestamps: raw text may hold "2025-13-01" or "yesterday".
    select max(monitoring.try_timestamptz(c.order_date)) as newest_event
    from (
        select o.order_date
        from staging.orders as o
        where o.batch_id = (select batch_id from newest_batch)
          and o.order_date ~ '^\d{4}-\d{2}-\d{2}'
          and left(o.order_date, 10) <= to_char(now() + interval '1 day', 'YYYY-MM-DD')
        order by o.order_date collate "C" desc
        limit 20
    ) as c
),

warehouse_day as (
    select max(date_key) as date_key from warehouse.fact_sales
)

select 'staging' as layer, s.newest_event, (select max(loaded_at) from staging.batches) as newest_load,
       (select batch_id from newest_batch) as batch_id
from staged as s

union all

select 'production',
       (select max(order_date) from production.orders),
       (select max(cleaned_at) from production.clean_log),
       (select max(batch_id) from production.clean_log)

union all

select 'warehouse',
       (select max(order_ts) from warehouse.fact_sales where date_key = (select date_key from warehouse_day)),
       (select max(loaded_at) from warehouse.load_log), (select max(batch_id) from warehouse.load_log)
