-- The product versions production took in the batches being loaded, as dim_product keeps them: into
-- changes_product, which scd2.sql makes the type 2 history of (scd_product, read by fact_sales.sql and
-- load_log.sql). The row hash covers the attributes whose change makes a new version.
create unlogged table work.changes_product as
select
    c.product_id,
    c.product_name,
    c.category,
    c.sub_category,
    c.brand,
    c.price,
    c.cost,
    c.price_band,
    md5(concat_ws('|', c.product_name, c.category, c.sub_category, c.brand, c.price, c.cost, c.price_band))
        as row_hash,
    c.updated_at
from production.product_changes as c
where c.batch_id = any (:batch_ids::text[]);
