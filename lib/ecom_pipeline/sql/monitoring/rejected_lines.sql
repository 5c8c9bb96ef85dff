-- Files of the newest loaded batch with lines that could not be staged (kept in staging.rejected_lines).
select i.batch_id, i.table_name, i.source_file, i.lines_rejected, i.lines_read
from staging.ingestion_log as i
where i.batch_id = (select max(b.batch_id) from staging.batches as b where b.status = 'loaded')
  and i.lines_rejected > 0
order by i.table_name
