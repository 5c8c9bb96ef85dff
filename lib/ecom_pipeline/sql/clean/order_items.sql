-- staging.order_items of one batch -> production.order_items, failures -> production.quarantine.
-- Items are immutable: a later row for a loaded item is unchanged when equal, quarantined (ITEM_CHANGED)
-- otherwise; so is a second, different row for the same item in one batch.
create temp table clean_order_items on commit drop as
with source as (
    -- The batch's rows; or, when late parents release rows of an earlier batch, only those lines of it.
    select * from staging.order_items
    where batch_id = :batch_id and (:retry_lines::bigint[] is null or source_line = any (:retry_lines::bigint[]))
),

collapsed as (
    -- Keys compared byte by byte ("C"): the same groups as the database's collation, but sorted several
    -- times faster (PostgreSQL uses abbreviated keys only for "C").
    select s.*, row_number() over (
        partition by order_item_id collate "C", order_id collate "C", product_id collate "C", quantity collate "C",
                     unit_price collate "C", discount_percentage collate "C", line_total collate "C"
        order by source_line) as copy_number
    from source as s
),

squished as materialized (
    -- White space trimmed once (and collapsed in free text), so later expressions work on plain columns.
    select
        c.source_line,
        c.source_file,
        c.copy_number,
        production.squish(c.order_item_id) as order_item_id,
        production.squish(c.order_id) as order_id,
        production.squish(c.product_id) as product_id,
        production.squish(c.quantity) as quantity,
        production.squish(c.unit_price) as unit_price,
        production.squish(c.discount_percentage) as discount_percentage,
        production.squish(c.line_total) as line_total
    from collapsed as c
),

normalised as (
    select
        s.source_line,
        s.source_file,
        s.copy_number,
        s.order_item_id,
        s.order_id,
        s.product_id,
        s.quantity as quantity_text,
        s.unit_price as unit_price_text,
        s.discount_percentage as discount_text,
        s.line_total as line_total_text
    from squished as s
),

typed as materialized (
    select
        n.*,
        case when production.is_integer(n.quantity_text) then n.quantity_text::integer end as quantity,
        case when production.is_money(n.unit_price_text) then n.unit_price_text::numeric(12, 2) end as unit_price,
        case when production.is_decimal(n.discount_text, 3, 2) then n.discount_text::numeric(5, 2) end as discount_percentage,
        case when production.is_money(n.line_total_text) then n.line_total_text::numeric(12, 2) end as line_total
    from normalised as n
),

checked as materialized (
    select
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
            case when abs(t.line_total - round(t.quantity * t.unit_price * (1 - t.discount_percentage / 100), 2)) > :tolerance
                 then 'LINE_TOTAL_MISMATCH' end,
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
    left join production.orders as o on o.order_id = t.order_id
    left join production.products as p on p.product_id = t.product_id
),

final as (
    select
        c.*,
        c.order_item_id as natural_key,
        case
            when c.copy_number > 1 then 'duplicate'
            when c.reasons <> '{}' then 'quarantined'
            when row_number() over (
                partition by case when c.copy_number = 1 and c.reasons = '{}' then c.order_item_id end collate "C"
                order by c.source_line) > 1 then 'changed'
            when e.order_item_id is null then 'insert'
            when (c.order_id, c.product_id, c.quantity, c.unit_price, c.discount_percentage, c.line_total)
                 is not distinct from
                 (e.order_id, e.product_id, e.quantity, e.unit_price, e.discount_percentage, e.line_total)
                then 'unchanged'
            else 'changed'
        end as action
    from checked as c
    left join production.order_items as e on e.order_item_id = c.order_item_id
)

select * from final;

update clean_order_items
set reasons = array['ITEM_CHANGED'], action = 'quarantined'
where action = 'changed';

insert into production.quarantine (batch_id, source_table, source_file, source_line, natural_key, reasons,
                                   raw_values, run_id)
select
    :batch_id, 'order_items', c.source_file, c.source_line, left(coalesce(c.natural_key, s.order_item_id), :max_key_length), c.reasons,
    to_jsonb(s) - array['batch_id', 'run_id', 'source_file', 'source_line', 'loaded_at'], :run_id
from clean_order_items as c
join staging.order_items as s on s.batch_id = :batch_id and s.source_line = c.source_line
where c.action = 'quarantined';

insert into production.order_items (order_item_id, order_id, product_id, quantity, unit_price, discount_percentage,
                                    line_total, batch_id)
select order_item_id, order_id, product_id, quantity, unit_price, discount_percentage, line_total, :write_batch_id
from clean_order_items
where action = 'insert';
