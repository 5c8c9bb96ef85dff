-- Slowly changing dimension (type 2) for customers, from the versions production took in the batches
-- being loaded. A new version only when a tracked attribute really changes (row hash); the first version
-- of a customer is valid from the beginning of time (1900-01-01), so older orders resolve to it, and the
-- current one until 9999-12-31 (dates every BI tool and driver can read, unlike infinity).
create temp table scd_customer on commit drop as
with changes as (
    select
        c.customer_id,
        c.first_name,
        c.last_name,
        c.email,
        c.city,
        c.state,
        c.country,
        warehouse.region(c.state) as segment,
        md5(concat_ws('|', c.first_name, c.last_name, c.email, c.city, c.state, c.country)) as row_hash,
        c.updated_at,
        false as is_existing
    from production.customer_changes as c
    where c.batch_id = any (:batch_ids::text[])
),

existing as (
    select
        d.customer_id, null, null, null, null, null, null, null,
        d.row_hash,
        d.valid_from as updated_at,
        true as is_existing
    from warehouse.dim_customer as d
    where d.is_current and d.customer_id in (select customer_id from changes)
),

sequenced as (
    select
        s.*,
        lag(s.row_hash) over (partition by s.customer_id order by s.updated_at) as previous_hash,
        bool_or(s.is_existing) over (partition by s.customer_id) as has_version
    from (select * from changes union all select * from existing) as s
),

new_versions as (
    select
        s.*,
        row_number() over (partition by s.customer_id order by s.updated_at) as version_number,
        lead(s.updated_at) over (partition by s.customer_id order by s.updated_at) as next_from
    from sequenced as s
    where not s.is_existing and s.row_hash is distinct from s.previous_hash
)

select
    v.customer_id, v.first_name, v.last_name, v.first_name || ' ' || v.last_name as full_name, v.email, v.city,
    v.state, v.country, v.segment, v.row_hash,
    case when not v.has_version and v.version_number = 1 then '1900-01-01 00:00+00'::timestamptz else v.updated_at end
        as valid_from,
    coalesce(v.next_from, '9999-12-31 00:00+00'::timestamptz) as valid_to,
    v.next_from is null as is_current
from new_versions as v;

update warehouse.dim_customer as d
set valid_to = n.valid_from, is_current = false
from (select customer_id, min(valid_from) as valid_from from scd_customer group by customer_id) as n
where d.customer_id = n.customer_id and d.is_current;

insert into warehouse.dim_customer (customer_id, first_name, last_name, full_name, email, city, state, country,
                                    segment, row_hash, valid_from, valid_to, is_current)
select customer_id, first_name, last_name, full_name, email, city, state, country, segment, row_hash, valid_from,
       valid_to, is_current
from scd_customer
order by customer_id, valid_from;
