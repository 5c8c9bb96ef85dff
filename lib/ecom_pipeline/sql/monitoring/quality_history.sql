-- Quality scores of the newest runs, newest first, with the checks each run failed.
select
    q.run_id,
    q.overall,
    q.grade,
    q.scored_at,
    coalesce(array_agg(c.check_name order by c.check_name) filter (where not c.passed), '{}') as failing_checks
from (
    select * from monitoring.quality_scores order by scored_at desc limit :limit
) as q
left join monitoring.check_results as c on c.run_id = q.run_id
group by q.run_id, q.overall, q.grade, q.scored_at
order by q.scored_at desc
