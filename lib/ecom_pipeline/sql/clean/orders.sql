-- staging.orders of one batch -> production.orders, failures -> production.quarantine.
-- Makes clean_orders (one action per staged row, in the order of production.clean_action), which
-- clean/quarantine.sql and clean.py's counts read next.
-- Runs after customers and products of the same batch, so references see them, and after the batch's
-- rows were typed and checked on their own (orders_rows.sql, order_items_rows.sql, in parallel slices):
-- here come the checks that need other rows and tables, the newest version of each order, and the writes.
create unlogged table work.clean_orders as
with typed as (
    select r.*
    from work.orders_rows as r
    where r.batch_id = :batch_id and (:retry_lines::bigint[] is null or r.source_line = any (:retry_lines::bigint[]))
),

existing as materialized (
    -- Production's versions of the batch's orders, asked for by key: on a Citus cluster each shard then
    -- answers for its own (a join of the whole table to the coordinator's working rows would pull it there).
    -- From the typed rows, not the CTE: a second reader would make PostgreSQL write the CTE out.
    select p.*
    from production.orders as p
    where p.order_id in (select r.order_id from work.orders_rows as r where r.batch_id = :batch_id)
),

batch_lines as (
    -- Sum of each order's lines (exact duplicates once); null when any of its line_total values is malformed.
    select order_id, case when bool_and(line_total is not null) then sum(line_total) end as lines_total
    from work.order_items_rows
    where batch_id = :batch_id and counts_in_total
    group by order_id
),

checked as materialized (
    select
        t.*,
        t.row_reasons || array_remove(array[
            case when t.customer_id is not null and cust.customer_id is null then
                case when exists (select from production.quarantine as q
                                  where q.source_table = 'customers' and q.natural_key = t.customer_id)
                     then 'CUSTOMER_QUARANTINED' else 'ORPHAN_CUSTOMER' end
            end,
            case when t.order_date < cust.registration_date then 'BEFORE_REGISTRATION' end,
            case when abs(t.total_amount - bl.lines_total) > :tolerance then 'TOTAL_MISMATCH' end
        ], null) as reasons
    from typed as t
    left join production.customers as cust on cust.customer_id = t.customer_id
    left join batch_lines as bl on bl.order_id = t.order_id
),

ranked as (
    -- The valid rows of each order, newest first. Over keys only, so the sort stays in memory.
    select
        c.source_line,
        row_number() over (partition by c.order_id collate "C" order by c.updated_at desc, c.source_line desc)
            as newest_first
    from checked as c
    where c.copy_number = 1 and c.reasons = '{}'
),

final as (
    select
        r.*,
        r.order_id as natural_key,
        production.clean_action(
            r.copy_number, r.reasons, k.newest_first, p.order_id is not null, r.updated_at > p.updated_at,
            not (  -- not distinct: equal, nulls included
                (r.customer_id, r.order_date, r.status, r.payment_method, r.shipping_address, r.total_amount,
                 r.updated_at)
                is distinct from
                (p.customer_id, p.order_date, p.status, p.payment_method, p.shipping_address, p.total_amount,
                 p.updated_at)
            )
        ) as action
    from checked as r
    left join ranked as k on k.source_line = r.source_line
    left join existing as p on p.order_id = r.order_id
)

select * from final;

-- New orders by a plain insert: the ranking left one row per order, and none that production holds.
insert into production.orders (order_id, customer_id, order_date, status, payment_method, shipping_address,
                               total_amount, updated_at, batch_id)
select order_id, customer_id, order_date, status, payment_method, shipping_address, total_amount, updated_at,
       :write_batch_id
from work.clean_orders
where action = 'insert';

-- Orders production holds, where this batch has a newer version.
update production.orders as p
set customer_id = c.customer_id,
    order_date = c.order_date,
    status = c.status,
    payment_method = c.payment_method,
    shipping_address = c.shipping_address,
    total_amount = c.total_amount,
    updated_at = c.updated_at,
    changed_at = now(),
    batch_id = :write_batch_id
from work.clean_orders as c
where c.action = 'update' and p.order_id = c.order_id;
