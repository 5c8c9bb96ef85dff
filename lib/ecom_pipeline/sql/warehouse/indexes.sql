-- The fact table's access paths for BI and for the next load, made once the first load has filled it.
-- CREATE INDEX takes a SHARE lock: readers go on reading while it builds.
create index if not exists fact_sales_date_idx on warehouse.fact_sales (date_key);
create index if not exists fact_sales_customer_idx on warehouse.fact_sales (customer_key);
create index if not exists fact_sales_product_idx on warehouse.fact_sales (product_key);
create index if not exists fact_sales_order_idx on warehouse.fact_sales (order_id);
