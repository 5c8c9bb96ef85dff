-- One row per batch this load took in. facts_inserted counts the batch's lines in the fact table;
-- facts_updated counts the earlier facts the load rewrote (status changes, re-pointed dimension versions),
-- the same for every batch of one load.
-- Reads scd_customer and scd_product, the new dimension versions warehouse/scd2.sql made.
with inserted as (
    select batch_id, count(*) as facts
    from warehouse.fact_sales
    where batch_id = any (:batch_ids::text[])
    group by batch_id
),

rewritten as (
    select count(*) as facts
    from warehouse.fact_sales
    where loaded_at = :loaded_at and batch_id <> all (:batch_ids::text[])
)

insert into warehouse.load_log (batch_id, customer_versions, product_versions, facts_inserted, facts_updated, run_id)
select
    b.batch_id,
    (select count(*) from work.scd_customer),
    (select count(*) from work.scd_product),
    coalesce(i.facts, 0),
    r.facts,
    :run_id
from unnest(:batch_ids::text[]) as b (batch_id)
left join inserted as i on i.batch_id = b.batch_id
cross join rewritten as r
on conflict (batch_id) do update set
    customer_versions = excluded.customer_versions,
    product_versions = excluded.product_versions,
    facts_inserted = excluded.facts_inserted,
    facts_updated = excluded.facts_updated,
    run_id = excluded.run_id,
    loaded_at = now();
