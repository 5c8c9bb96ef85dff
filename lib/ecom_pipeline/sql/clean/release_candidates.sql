-- Rows of earlier batches quarantined only for a missing parent (within the release window) whose parent
-- production now holds: moved out of the quarantine into release_candidates, to be cleaned again.
-- Raw parent keys are squished as the clean stage squishes them.
drop table if exists work.release_candidates;

create unlogged table work.release_candidates as
with held as (
    select q.*
    from production.quarantine as q
    where q.source_table = :table
      and q.batch_id <> :batch_id
      and q.reasons <@ :parent_reasons::text[]
      and q.quarantined_at >= now() - make_interval(days => :release_window_days)
),

held_orders as materialized (
    -- The orders held rows wait for that production holds now, asked for by key: on a Citus cluster each
    -- shard then answers for its own, instead of the whole table coming to the coordinator.
    select o.order_id
    from production.orders as o
    where o.order_id in (select production.squish(h.raw_values ->> 'order_id') from held as h)
),

final as (
    -- Every parent the row was held for is there now. Joins on each parent's key (unique), or a list of
    -- them, not correlated subqueries, which a Citus cluster cannot run over the rows of a CTE.
    select h.*
    from held as h
    left join production.customers as c on c.customer_id = production.squish(h.raw_values ->> 'customer_id')
    left join production.products as p on p.product_id = production.squish(h.raw_values ->> 'product_id')
    where (not h.reasons && array['ORPHAN_CUSTOMER', 'CUSTOMER_QUARANTINED'] or c.customer_id is not null)
      and (not h.reasons && array['ORPHAN_ORDER', 'ORDER_QUARANTINED']
           or production.squish(h.raw_values ->> 'order_id') in (select o.order_id from held_orders as o))
      and (not h.reasons && array['ORPHAN_PRODUCT', 'PRODUCT_QUARANTINED'] or p.product_id is not null)
)

select * from final;

delete from production.quarantine as q
using work.release_candidates as r
where q.quarantine_id = r.quarantine_id;
