-- staging.products of one batch -> production.products, failures -> production.quarantine.
-- Makes clean_products (one action per staged row, in the order of production.clean_action), which
-- clean/quarantine.sql and clean.py's counts read next.
create unlogged table work.clean_products as
with source as (
    select * from staging.products where batch_id = :batch_id
),

collapsed as (
    -- Keys compared byte by byte ("C"): the same groups as the database's collation, but sorted several
    -- times faster (PostgreSQL uses abbreviated keys only for "C").
    select s.*, row_number() over (
        partition by product_id collate "C", product_name collate "C", category collate "C",
                     sub_category collate "C", brand collate "C", price collate "C", cost collate "C",
                     stock_quantity collate "C", updated_at collate "C"
        order by source_line) as copy_number
    from source as s
),

squished as materialized (
    -- White space trimmed once (and collapsed in free text), so later expressions work on plain columns.
    select
        c.source_line,
        c.source_file,
        c.copy_number,
        production.squish(c.product_id) as product_id,
        production.squish_text(c.product_name) as product_name,
        production.squish_text(c.category) as category,
        production.squish_text(c.sub_category) as sub_category,
        production.squish_text(c.brand) as brand,
        production.squish(c.price) as price,
        production.squish(c.cost) as cost,
        production.squish(c.stock_quantity) as stock_quantity,
        production.squish(c.updated_at) as updated_at
    from collapsed as c
),

normalised as (
    select
        s.source_line,
        s.source_file,
        s.copy_number,
        s.product_id,
        s.product_name,
        s.category as category_text,
        s.sub_category,
        s.brand,
        s.price as price_text,
        s.cost as cost_text,
        s.stock_quantity as stock_text,
        s.updated_at as updated_at_text
    from squished as s
),

typed as materialized (
    select
        n.*,
        -- Known categories are matched whatever their case; others are kept as written.
        coalesce(known.name, n.category_text) as category,
        case when production.is_money(n.price_text) then n.price_text::numeric(12, 2) end as price,
        case when production.is_money(n.cost_text) then n.cost_text::numeric(12, 2) end as cost,
        case when production.is_integer(n.stock_text) then n.stock_text::integer end as stock_quantity,
        case when production.is_timestamp(n.updated_at_text) then n.updated_at_text::timestamptz end as updated_at
    from normalised as n
    left join unnest(:categories::text[]) as known (name) on lower(known.name) = lower(n.category_text)
),

checked as materialized (
    select
        t.*,
        array_remove(array[
            case when t.product_id is null or t.product_name is null or t.category is null or t.price_text is null
                      or t.cost_text is null or t.updated_at_text is null
                 then 'MISSING_VALUE' end,
            case when (t.price_text is not null and t.price is null) or (t.cost_text is not null and t.cost is null)
                      or (t.stock_text is not null and t.stock_quantity is null)
                 then 'MALFORMED_NUMBER' end,
            case when t.updated_at_text is not null and t.updated_at is null then 'MALFORMED_DATE' end,
            case when t.price <= 0 or t.cost < 0 or t.stock_quantity < 0 then 'NEGATIVE_AMOUNT' end,
            case when t.cost > t.price and t.price > 0 then 'COST_ABOVE_PRICE' end,
            case when t.updated_at > now() + make_interval(hours => :future_tolerance_hours) then 'FUTURE_DATE' end,
            case when t.updated_at < :earliest_date then 'DATE_TOO_EARLY' end,
            case when length(t.product_id) > :max_key_length or length(t.category) > :max_key_length
                 then 'VALUE_TOO_LONG' end
        ], null) as reasons
    from typed as t
),

ranked as (
    select
        c.*,
        row_number() over (
            partition by case when c.copy_number = 1 and c.reasons = '{}' then c.product_id end collate "C"
            order by c.updated_at desc, c.source_line desc) as newest_first
    from checked as c
),

final as (
    select
        r.*,
        r.product_id as natural_key,
        production.clean_action(
            r.copy_number, r.reasons, r.newest_first, p.product_id is not null, r.updated_at > p.updated_at,
            not (  -- not distinct: equal, nulls included
                (r.product_name, r.category, r.sub_category, r.brand, r.price, r.cost, r.stock_quantity, r.updated_at)
                is distinct from
                (p.product_name, p.category, p.sub_category, p.brand, p.price, p.cost, p.stock_quantity, p.updated_at)
            )
        ) as action
    from ranked as r
    left join production.products as p on p.product_id = r.product_id
)

select * from final;

insert into production.products as p (product_id, product_name, category, sub_category, brand, price, cost,
                                      stock_quantity, profit_margin, price_band, updated_at, changed_at, batch_id)
select product_id, product_name, category, sub_category, brand, price, cost, stock_quantity,
       round((price - cost) / price, 4), 'mid', updated_at, now(), :batch_id
from work.clean_products
where action in ('insert', 'update')
on conflict (product_id) do update set
    product_name = excluded.product_name,
    category = excluded.category,
    sub_category = excluded.sub_category,
    brand = excluded.brand,
    price = excluded.price,
    cost = excluded.cost,
    stock_quantity = excluded.stock_quantity,
    profit_margin = excluded.profit_margin,
    updated_at = excluded.updated_at,
    changed_at = excluded.changed_at,  -- the load's time, given above: a distributed table takes no now() here
    batch_id = excluded.batch_id;

-- Price band from the price distribution of the product's category (thirds), for the rows this batch wrote.
with bounds as (
    select
        category,
        percentile_cont(1.0 / 3) within group (order by price) as low,
        percentile_cont(2.0 / 3) within group (order by price) as high
    from production.products
    group by category
)

update production.products as p
set price_band = case when p.price <= b.low then 'budget' when p.price <= b.high then 'mid' else 'premium' end
from bounds as b
where b.category = p.category
  -- A subquery, not a join: a Citus reference table is updated only from rows sent to its nodes.
  and p.product_id in (select c.product_id from work.clean_products as c where c.action in ('insert', 'update'));

insert into production.product_changes (product_id, product_name, category, sub_category, brand, price, cost,
                                        price_band, updated_at, batch_id)
select p.product_id, p.product_name, p.category, p.sub_category, p.brand, p.price, p.cost, p.price_band,
       p.updated_at, :batch_id
from production.products as p
join work.clean_products as c on c.product_id = p.product_id
where c.action in ('insert', 'update');
