-- The customer versions production took in the batches being loaded, as dim_customer keeps them: into
-- changes_customer, which scd2.sql makes the type 2 history of (scd_customer, read by fact_sales.sql and
-- load_log.sql). The row hash covers the attributes whose change makes a new version.
create unlogged table work.changes_customer as
select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.first_name || ' ' || c.last_name as full_name,
    c.email,
    c.city,
    c.state,
    c.country,
    warehouse.region(c.state) as segment,
    md5(concat_ws('|', c.first_name, c.last_name, c.email, c.city, c.state, c.country)) as row_hash,
    c.updated_at
from production.customer_changes as c
where c.batch_id = any (:batch_ids::text[]);
