-- Slowly changing dimension (type 2) for products; see dim_customer.sql for the rules.
create temp table scd_product on commit drop as
with changes as (
    select
        c.product_id,
        c.product_name,
        c.category,
        c.sub_category,
        c.brand,
        c.price,
        c.cost,
        c.price_band,
        md5(concat_ws('|', c.product_name, c.category, c.sub_category, c.brand, c.price, c.cost, c.price_band))
            as row_hash,
        c.updated_at,
        false as is_existing
    from production.product_changes as c
    where c.batch_id = any (:batch_ids::text[])
),

existing as (
    select
        d.product_id, null, null, null, null, null::numeric, null::numeric, null,
        d.row_hash,
        d.valid_from as updated_at,
        true as is_existing
    from warehouse.dim_product as d
    where d.is_current and d.product_id in (select product_id from changes)
),

sequenced as (
    select
        s.*,
        lag(s.row_hash) over (partition by s.product_id order by s.updated_at) as previous_hash,
        bool_or(s.is_existing) over (partition by s.product_id) as has_version
    from (select * from changes union all select * from existing) as s
),

new_versions as (
    select
        s.*,
        row_number() over (partition by s.product_id order by s.updated_at) as version_number,
        lead(s.updated_at) over (partition by s.product_id order by s.updated_at) as next_from
    from sequenced as s
    where not s.is_existing and s.row_hash is distinct from s.previous_hash
)

select
    v.product_id, v.product_name, v.category, v.sub_category, v.brand, v.price, v.cost, v.price_band, v.row_hash,
    case when not v.has_version and v.version_number = 1 then '1900-01-01 00:00+00'::timestamptz else v.updated_at end
        as valid_from,
    coalesce(v.next_from, '9999-12-31 00:00+00'::timestamptz) as valid_to,
    v.next_from is null as is_current
from new_versions as v;

update warehouse.dim_product as d
set valid_to = n.valid_from, is_current = false
from (select product_id, min(valid_from) as valid_from from scd_product group by product_id) as n
where d.product_id = n.product_id and d.is_current;

insert into warehouse.dim_product (product_id, product_name, category, sub_category, brand, price, cost, price_band,
                                   row_hash, valid_from, valid_to, is_current)
select product_id, product_name, category, sub_category, brand, price, cost, price_band, row_hash, valid_from,
       valid_to, is_current
from scd_product
order by product_id, valid_from;
