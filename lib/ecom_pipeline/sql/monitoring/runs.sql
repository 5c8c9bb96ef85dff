-- The newest pipeline runs, newest first, with their failed and retried stages; whether a run is still
-- alive is told by the pipeline's advisory lock (held by run_all.py's session while it runs).
select
    r.run_id,
    r.status,
    r.started_at,
    r.finished_at,
    coalesce(r.duration_s, extract(epoch from now() - r.started_at)) as duration_s,
    r.error,
    coalesce(array_agg(distinct s.stage) filter (where s.status = 'failed'), '{}') as failed_stages,
    coalesce(array_agg(distinct s.stage) filter (where s.attempt > 1), '{}') as retried_stages
from (
    select * from monitoring.pipeline_runs order by started_at desc limit :limit
) as r
left join monitoring.stage_runs as s on s.run_id = r.run_id
group by r.run_id, r.status, r.started_at, r.finished_at, r.duration_s, r.error
order by r.started_at desc
