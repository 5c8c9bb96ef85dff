-- One slice of a batch's staged orders, each row typed and checked on its own, into work.orders_rows.
-- A slice is the rows whose raw order_id hashes to :slice of :slices: copies of a row stay together.
insert into work.orders_rows
with source as (
    -- The slice's rows; or, when late parents release rows of an earlier batch, only those lines of it.
    select * from staging.orders
    where batch_id = :batch_id
      and (:slices = 1 or mod(hashtext(coalesce(order_id, '')) & 2147483647, :slices) = :slice)
      and (:retry_lines::bigint[] is null or source_line = any (:retry_lines::bigint[]))
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
)

select
    :batch_id,
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
             then 'VALUE_TOO_LONG' end
    ], null) as row_reasons
from typed as t;
