-- Rows of earlier batches quarantined only for a missing parent (within the release window) whose parent
-- production now holds: moved out of the quarantine into release_candidates, to be cleaned again.
-- Raw parent keys are squished as the clean stage squishes them.
drop table if exists release_candidates;

create temp table release_candidates on commit drop as
with held as (
    select q.*
    from production.quarantine as q
    where q.source_table = :table
      and q.batch_id <> :batch_id
      and q.reasons <@ :parent_reasons::text[]
      and q.quarantined_at >= now() - make_interval(days => :release_window_days)
),

final as (
    -- Every parent the row was held for is there now.
    select h.*
    from held as h
    where (not h.reasons && array['ORPHAN_CUSTOMER', 'CUSTOMER_QUARANTINED']
           or exists (select from production.customers as c
                      where c.customer_id = production.squish(h.raw_values ->> 'customer_id')))
      and (not h.reasons && array['ORPHAN_ORDER', 'ORDER_QUARANTINED']
           or exists (select from production.orders as o
                      where o.order_id = production.squish(h.raw_values ->> 'order_id')))
      and (not h.reasons && array['ORPHAN_PRODUCT', 'PRODUCT_QUARANTINED']
           or exists (select from production.products as p
                      where p.product_id = production.squish(h.raw_values ->> 'product_id')))
)

select * from final;

delete from production.quarantine as q
using release_candidates as r
where q.quarantine_id = r.quarantine_id;
