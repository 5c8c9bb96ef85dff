-- The rows this run quarantined, by table and reason (a row with two reasons counts under each), with a
-- few examples: the natural key where there is one, else the file and line.
with reasons as (
    select
        q.source_table,
        r.reason,
        coalesce(q.natural_key, q.source_file || ':' || q.source_line) as example,
        q.quarantine_id
    from production.quarantine as q
    cross join lateral unnest(q.reasons) as r (reason)
    where q.run_id = :run_id
)

select
    source_table,
    reason,
    count(*) as rows,
    array_to_string((array_agg(example order by quarantine_id))[1:3], ', ') as examples
from reasons
group by source_table, reason
order by source_table, count(*) desc, reason
