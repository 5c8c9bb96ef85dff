-- When the pipeline last finished successfully, and whether a run holds the lock right now.
select
    (select max(finished_at) from monitoring.pipeline_runs where status = 'success') as last_success_at,
    exists (
        select 1 from pg_locks
        where locktype = 'advisory' and objid = :lock_key and granted
          and database = (select oid from pg_database where datname = current_database())
    ) as lock_held
