-- staging.order_items of one batch -> production.order_items, failures -> production.quarantine.
-- Makes clean_order_items (one action per staged row, in the order of production.clean_action), which
-- clean/quarantine.sql and clean.py's counts read next.
-- Items are immutable: a later row for a loaded item is unchanged when equal, quarantined (ITEM_CHANGED)
-- otherwise; so is a second, different row for the same item in one batch.
create unlogged table work.clean_order_items as
with typed as (
    -- The batch's lines, typed and checked on their own by order_items_rows.sql.
    select r.*
    from work.order_items_rows as r
    where r.batch_id = :batch_id and (:retry_lines::bigint[] is null or r.source_line = any (:retry_lines::bigint[]))
),

existing_orders as materialized (
    -- What production holds of the batch's orders and lines, asked for by key: on a Citus cluster each shard
    -- then answers for its own (a join of a whole table to the coordinator's working rows would pull it
    -- there). From the typed rows, not the CTE: a second reader would make PostgreSQL write the CTE out.
    select o.order_id
    from production.orders as o
    where o.order_id in (select r.order_id from work.order_items_rows as r where r.batch_id = :batch_id)
),

existing_lines as materialized (
    select e.*
    from production.order_items as e
    where e.order_item_id in (select r.order_item_id from work.order_items_rows as r where r.batch_id = :batch_id)
),

checked as materialized (
    select
        t.*,
        t.row_reasons || array_remove(array[
            case when t.order_id is not null and o.order_id is null then
                case when exists (select from production.quarantine as q
                                  where q.source_table = 'orders' and q.natural_key = t.order_id)
                     then 'ORDER_QUARANTINED' else 'ORPHAN_ORDER' end
            end,
            case when t.product_id is not null and p.product_id is null then
                case when exists (select from production.quarantine as q
                                  where q.source_table = 'products' and q.natural_key = t.product_id)
                     then 'PRODUCT_QUARANTINED' else 'ORPHAN_PRODUCT' end
            end
        ], null) as reasons
    from typed as t
    left join existing_orders as o on o.order_id = t.order_id
    left join production.products as p on p.product_id = t.product_id
),

ranked as (
    -- The valid rows of each item in line order. Over keys only, so the sort stays in memory.
    select c.source_line, row_number() over (partition by c.order_item_id collate "C" order by c.source_line) as version
    from checked as c
    where c.copy_number = 1 and c.reasons = '{}'
),

final as (
    select
        c.*,
        c.order_item_id as natural_key,
        -- A line is never updated: any other version of it (stale here) is quarantined below.
        production.clean_action(
            c.copy_number, c.reasons, k.version, e.order_item_id is not null, false,
            not (  -- not distinct: equal, nulls included
                (c.order_id, c.product_id, c.quantity, c.unit_price, c.discount_percentage, c.line_total)
                is distinct from
                (e.order_id, e.product_id, e.quantity, e.unit_price, e.discount_percentage, e.line_total)
            )
        ) as action
    from checked as c
    left join ranked as k on k.source_line = c.source_line
    left join existing_lines as e on e.order_item_id = c.order_item_id
)

select * from final;

update work.clean_order_items
set reasons = array['ITEM_CHANGED'], action = 'quarantined'
where action = 'stale';

insert into production.order_items (order_item_id, order_id, product_id, quantity, unit_price, discount_percentage,
                                    line_total, batch_id)
select order_item_id, order_id, product_id, quantity, unit_price, discount_percentage, line_total, :write_batch_id
from work.clean_order_items
where action = 'insert';
