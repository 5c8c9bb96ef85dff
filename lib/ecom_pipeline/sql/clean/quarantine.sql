-- The rows of one batch's table that clean/<table>.sql quarantined, into production.quarantine with their
-- values as staged. Reads :actions, the action table that <table>.sql made (clean_<table>), beside
-- :staged (staging.<table>); the row's key is its cleaned key, or the raw :key_column if it had none.
insert into production.quarantine (batch_id, source_table, source_file, source_line, natural_key, reasons,
                                   raw_values, run_id)
select
    :batch_id, :source_table, c.source_file, c.source_line,
    left(coalesce(c.natural_key, s.:key_column), :max_key_length), c.reasons,
    to_jsonb(s) - array['batch_id', 'run_id', 'source_file', 'source_line', 'loaded_at'], :run_id
from :actions as c
join :staged as s on s.batch_id = :batch_id and s.source_line = c.source_line
where c.action = 'quarantined';
