-- Slowly changing dimension (type 2), the same for every such dimension: run after dim_customer.sql and
-- dim_product.sql, on the :changes table each made (its key :key, the attributes in :columns, row_hash,
-- updated_at), into :dimension. Makes :versions (scd_customer, scd_product), the new versions.
-- A new version only when a tracked attribute really changes (row hash): the first change of a key is
-- compared with its current version. A key's first version is valid from the beginning of time
-- (1900-01-01), so older orders resolve to it, and the current one until 9999-12-31 (dates every BI tool
-- and driver can read, unlike infinity). The clean stage writes a change only when it is newer than what
-- production has, so the current version always comes before a key's changes.
create unlogged table :versions as
with sequenced as (
    select
        c.*,
        d.:key is not null as has_version,
        coalesce(lag(c.row_hash) over (partition by c.:key order by c.updated_at), d.row_hash) as previous_hash
    from :changes as c
    left join :dimension as d on d.:key = c.:key and d.is_current
),

new_versions as (
    select
        s.*,
        row_number() over (partition by s.:key order by s.updated_at) as version_number,
        lead(s.updated_at) over (partition by s.:key order by s.updated_at) as next_from
    from sequenced as s
    where s.row_hash is distinct from s.previous_hash
)

select
    v.*,
    case when not v.has_version and v.version_number = 1 then '1900-01-01 00:00+00'::timestamptz else v.updated_at end
        as valid_from,
    coalesce(v.next_from, '9999-12-31 00:00+00'::timestamptz) as valid_to,
    v.next_from is null as is_current
from new_versions as v;

select production.place_work_table(:versions_name);

update :dimension as d
set valid_to = n.valid_from, is_current = false
from (select v.:key, min(v.valid_from) as valid_from from :versions as v group by v.:key) as n
where d.:key = n.:key and d.is_current;

insert into :dimension (:columns, row_hash, valid_from, valid_to, is_current)
select :columns, row_hash, valid_from, valid_to, is_current
from :versions
order by :key, valid_from;
