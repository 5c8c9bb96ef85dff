-- staging.orders of one batch -> production.orders, failures -> production.quarantine.
-- Runs after customers and products of the same batch, so references see them.
create temp table clean_orders on commit drop as
with source as (
    -- The batch's rows; or, when late parents release rows of an earlier batch, only those lines of it.
    select * from staging.orders
    where batch_id = :batch_id and (:retry_lines::bigint[] is null or source_line = any (:retry_lines::bigint[]))
),

staged_lines as (
    -- This batch's order lines, exact duplicates once, each line_total read as money once.
    select
        l.order_id,
        case when production.is_money(l.line_total) then l.line_total::numeric end as amount
    from (
        select distinct
            order_item_id,
            production.squish(order_id) as order_id,
            product_id, quantity, unit_price, discount_percentage,
            production.squish(line_total) as line_total
        from staging.order_items
        where batch_id = :batch_id
    ) as l
),

batch_lines as (
    -- Sum of each order's lines; null when any of its line_total values is malformed.
    select order_id, case when bool_and(amount is not null) then sum(amount) end as lines_total
    from staged_lines
    group by order_id
),

collapsed as (
    -- Keys compared byte by byte ("C"): the same groups as the database's collation, but sorted several
    -- times faster (PostgreSQL uses abbreviated keys only for "C").
    select s.*, row_number() over (
        partition by order_id collate "C", customer_id collate "C", order_date collate "C", status collate "C",
                     payment_method collate "C", shipping_address collate "C", total_amount collate "C",
                     updated_at collate "C"
        order by source_line) as copy_number
    from source as s
),

squished as materialized (
    -- White space trimmed once (and collapsed in free text), so later expressions work on plain columns.
    select
        c.source_line,
        c.source_file,
        c.copy_number,
        production.squish(c.order_id) as order_id,
        production.squish(c.customer_id) as customer_id,
        production.squish(c.order_date) as order_date,
        production.squish(c.status) as status,
        production.squish(c.payment_method) as payment_method,
        production.squish_text(c.shipping_address) as shipping_address,
        production.squish(c.total_amount) as total_amount,
        production.squish(c.updated_at) as updated_at
    from collapsed as c
),

normalised as (
    select
        s.source_line,
        s.source_file,
        s.copy_number,
        s.order_id,
        s.customer_id,
        s.order_date as order_date_text,
        -- "Credit Card", " CREDIT_CARD " and "credit-card" all mean credit_card.
        regexp_replace(lower(s.status), '[ -]+', '_', 'g') as status,
        regexp_replace(lower(s.payment_method), '[ -]+', '_', 'g') as payment_method,
        s.shipping_address,
        s.total_amount as total_text,
        s.updated_at as updated_at_text
    from squished as s
),

typed as materialized (
    select
        n.*,
        case when production.is_timestamp(n.order_date_text) then n.order_date_text::timestamptz end as order_date,
        case when production.is_money(n.total_text) then n.total_text::numeric(12, 2) end as total_amount,
        case when production.is_timestamp(n.updated_at_text) then n.updated_at_text::timestamptz end as updated_at
    from normalised as n
),

checked as materialized (
    select
        t.*,
        array_remove(array[
            case when t.order_id is null or t.customer_id is null or t.order_date_text is null or t.status is null
                      or t.payment_method is null or t.total_text is null or t.updated_at_text is null
                 then 'MISSING_VALUE' end,
            case when (t.order_date_text is not null and t.order_date is null)
                      or (t.updated_at_text is not null and t.updated_at is null)
                 then 'MALFORMED_DATE' end,
            case when t.total_text is not null and t.total_amount is null then 'MALFORMED_NUMBER' end,
            case when t.status <> all (:statuses::text[]) then 'INVALID_STATUS' end,
            case when t.payment_method <> all (:payment_methods::text[]) then 'INVALID_PAYMENT_METHOD' end,
            case when t.total_amount < 0 then 'NEGATIVE_AMOUNT' end,
            case when t.order_date > now() + make_interval(hours => :future_tolerance_hours)
                      or t.updated_at > now() + make_interval(hours => :future_tolerance_hours)
                 then 'FUTURE_DATE' end,
            case when t.order_date < :earliest_date or t.updated_at < :earliest_date then 'DATE_TOO_EARLY' end,
            case when length(t.order_id) > :max_key_length or length(t.customer_id) > :max_key_length
                 then 'VALUE_TOO_LONG' end,
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
    select
        c.*,
        row_number() over (
            partition by case when c.copy_number = 1 and c.reasons = '{}' then c.order_id end collate "C"
            order by c.updated_at desc, c.source_line desc) as newest_first
    from checked as c
),

final as (
    select
        r.*,
        r.order_id as natural_key,
        case
            when r.copy_number > 1 then 'duplicate'
            when r.reasons <> '{}' then 'quarantined'
            when r.newest_first > 1 then 'stale'
            when p.order_id is null then 'insert'
            when r.updated_at > p.updated_at then 'update'
            when (r.customer_id, r.order_date, r.status, r.payment_method, r.shipping_address, r.total_amount,
                  r.updated_at)
                 is not distinct from
                 (p.customer_id, p.order_date, p.status, p.payment_method, p.shipping_address, p.total_amount,
                  p.updated_at)
                then 'unchanged'
            else 'stale'
        end as action
    from ranked as r
    left join production.orders as p on p.order_id = r.order_id
)

select * from final;

insert into production.quarantine (batch_id, source_table, source_file, source_line, natural_key, reasons,
                                   raw_values, run_id)
select
    :batch_id, 'orders', c.source_file, c.source_line, left(coalesce(c.natural_key, s.order_id), :max_key_length), c.reasons,
    to_jsonb(s) - array['batch_id', 'run_id', 'source_file', 'source_line', 'loaded_at'], :run_id
from clean_orders as c
join staging.orders as s on s.batch_id = :batch_id and s.source_line = c.source_line
where c.action = 'quarantined';

insert into production.orders as p (order_id, customer_id, order_date, status, payment_method, shipping_address,
                                    total_amount, updated_at, batch_id)
select order_id, customer_id, order_date, status, payment_method, shipping_address, total_amount, updated_at,
       :write_batch_id
from clean_orders
where action in ('insert', 'update')
on conflict (order_id) do update set
    customer_id = excluded.customer_id,
    order_date = excluded.order_date,
    status = excluded.status,
    payment_method = excluded.payment_method,
    shipping_address = excluded.shipping_address,
    total_amount = excluded.total_amount,
    updated_at = excluded.updated_at,
    changed_at = now(),
    batch_id = excluded.batch_id;
