-- One slice of a batch's staged order lines, each row typed and checked on its own, into
-- work.order_items_rows. A slice is the rows whose raw order_item_id hashes to :slice of :slices: copies
-- of a row stay together, and so do the lines that count once in their order's total.
insert into work.order_items_rows
with source as (
    -- The slice's rows; or, when late parents release rows of an earlier batch, only those lines of it.
    select * from staging.order_items
    where batch_id = :batch_id
      and (:slices = 1 or mod(hashtext(coalesce(order_item_id, '')) & 2147483647, :slices) = :slice)
      and (:retry_lines::bigint[] is null or source_line = any (:retry_lines::bigint[]))
),

squished as materialized (
    -- White space trimmed once, so later expressions work on plain columns.
    select
        s.*,
        production.squish(s.order_id) as squished_order_id,
        production.squish(s.line_total) as squished_line_total
    from source as s
),

collapsed as (
    -- copy_number: exact copies of a line (every raw value equal). counts_in_total: the lines an order's
    -- total is checked against, once each when equal but for white space around order_id or line_total.
    -- Both windows share one sort. Keys compared byte by byte ("C"): the same groups as the database's
    -- collation, but sorted several times faster (PostgreSQL uses abbreviated keys only for "C").
    select
        s.*,
        row_number() over (
            partition by order_item_id collate "C", product_id collate "C", quantity collate "C",
                         unit_price collate "C", discount_percentage collate "C",
                         squished_order_id collate "C", squished_line_total collate "C"
            order by order_id collate "C", line_total collate "C", source_line) = 1 as counts_in_total,
        row_number() over (
            partition by order_item_id collate "C", product_id collate "C", quantity collate "C",
                         unit_price collate "C", discount_percentage collate "C",
                         squished_order_id collate "C", squished_line_total collate "C",
                         order_id collate "C", line_total collate "C"
            order by source_line) as copy_number
    from squished as s
),

normalised as (
    select
        c.source_line,
        c.source_file,
        c.copy_number,
        c.counts_in_total,
        production.squish(c.order_item_id) as order_item_id,
        c.squished_order_id as order_id,
        production.squish(c.product_id) as product_id,
        production.squish(c.quantity) as quantity_text,
        production.squish(c.unit_price) as unit_price_text,
        production.squish(c.discount_percentage) as discount_text,
        c.squished_line_total as line_total_text
    from collapsed as c
),

typed as materialized (
    select
        n.*,
        case when production.is_integer(n.quantity_text) then n.quantity_text::integer end as quantity,
        case when production.is_money(n.unit_price_text) then n.unit_price_text::numeric(12, 2) end as unit_price,
        case
            when production.is_decimal(n.discount_text, 3, 2) then n.discount_text::numeric(5, 2)
        end as discount_percentage,
        case when production.is_money(n.line_total_text) then n.line_total_text::numeric(12, 2) end as line_total
    from normalised as n
)

select
    :batch_id,
    t.*,
    array_remove(array[
        case when t.order_item_id is null or t.order_id is null or t.product_id is null or t.quantity_text is null
                  or t.unit_price_text is null or t.discount_text is null or t.line_total_text is null
             then 'MISSING_VALUE' end,
        case when (t.quantity_text is not null and t.quantity is null)
                  or (t.unit_price_text is not null and t.unit_price is null)
                  or (t.discount_text is not null and t.discount_percentage is null)
                  or (t.line_total_text is not null and t.line_total is null)
             then 'MALFORMED_NUMBER' end,
        case when t.quantity <= 0 then 'INVALID_QUANTITY' end,
        case when length(t.order_item_id) > :max_key_length or length(t.order_id) > :max_key_length
                  or length(t.product_id) > :max_key_length
             then 'VALUE_TOO_LONG' end,
        case when t.discount_percentage not between 0 and 100 then 'INVALID_DISCOUNT' end,
        case when t.unit_price < 0 or t.line_total < 0 then 'NEGATIVE_AMOUNT' end,
        case when abs(t.line_total - round(t.quantity * t.unit_price * (1 - t.discount_percentage / 100), 2))
                  > :tolerance
             then 'LINE_TOTAL_MISMATCH' end
    ], null) as row_reasons
from typed as t;
