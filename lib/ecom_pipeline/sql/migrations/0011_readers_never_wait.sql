-- BI readers never wait on a load. Dropping a foreign key or an index takes an ACCESS EXCLUSIVE lock, which
-- queues every reader of the table until the load commits; a declared foreign key is otherwise checked row
-- by row, the slowest part of a large load. So the warehouse declares none: its integrity holds by
-- construction (facts are built by joins to their dimensions, unknown members are key -1) and is checked
-- by the quality stage (warehouse_*_resolves). Secondary indexes are made by the warehouse stage after
-- each load (sql/warehouse/indexes.sql, a SHARE lock that readers do not notice), so the first, largest
-- load fills the fact table without them.
do $$
declare
    fk record;
begin
    for fk in
        select conrelid::regclass as table_name, conname
        from pg_constraint
        where contype = 'f' and connamespace = 'warehouse'::regnamespace
    loop
        execute format('alter table %s drop constraint %I', fk.table_name, fk.conname);
    end loop;
end
$$;

drop index warehouse.fact_sales_date_idx;
drop index warehouse.fact_sales_customer_idx;
drop index warehouse.fact_sales_product_idx;
drop index warehouse.fact_sales_order_idx;
