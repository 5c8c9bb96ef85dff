-- What the quality report says beside the checks: the orders' date range in the warehouse, the rows
-- this run staged and quarantined, and each check's failing rows in the run scored before this one.
select
    (select min(full_date) from warehouse.agg_daily_sales) as first_date,
    (select max(full_date) from warehouse.agg_daily_sales) as last_date,
    (select coalesce(sum(rows_staged), 0) from staging.ingestion_log where run_id = :run_id) as rows_staged,
    (select count(*) from production.quarantine where run_id = :run_id) as rows_quarantined,
    (
        select coalesce(jsonb_object_agg(c.check_name, c.rows_failing), '{}')
        from monitoring.check_results as c
        where c.run_id = (
            select s.run_id from monitoring.quality_scores as s
            where s.run_id <> :run_id
            order by s.scored_at desc
            limit 1
        )
    ) as previous_failing
