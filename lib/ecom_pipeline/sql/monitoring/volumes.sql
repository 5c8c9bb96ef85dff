-- Rows per batch and table, newest batches first: staged rows per file, and facts written per load.
with batches as (
    select batch_id from staging.batches where status = 'loaded' order by batch_id desc limit :limit
)

select i.batch_id, 'staging.' || i.table_name as table_name, i.rows_staged as row_count
from staging.ingestion_log as i
where i.batch_id in (select batch_id from batches)

union all

select w.batch_id, 'warehouse.fact_sales', w.facts_inserted
from warehouse.load_log as w
where w.batch_id in (select batch_id from batches)

order by batch_id desc, table_name
