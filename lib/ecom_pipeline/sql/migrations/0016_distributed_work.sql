-- ANALYZE of the given tables, except those a Citus cluster has placed (distributed or reference tables):
-- Citus analyses every placement of such a table over connections of their own, which a transaction that
-- already read a placement on the coordinator may not open; their shards keep statistics of their own.
-- On a server without Citus, plain ANALYZE of every table given.
create function production.analyze_local(variadic tables regclass[]) returns void
language plpgsql as $$
declare
    placed regclass[] := '{}';
    t regclass;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is not null then
        execute 'select coalesce(array_agg(logicalrelid), ''{}'') from pg_dist_partition where logicalrelid = any ($1)'
            into placed using tables;
    end if;
    foreach t in array tables loop
        if t <> all (placed) then
            execute format('analyze %s', t);
        end if;
    end loop;
end
$$;

-- A work table (schema work) that the statements after it join to distributed or reference tables: on a
-- database whose schema Citus has distributed, it is placed too (a temporary or local table cannot be sent to
-- the workers): by order_id beside production.orders, or copied to every node when no column is given.
-- Anywhere else, nothing: it stays the plain table it is.
create function production.place_work_table(work_table regclass, distribution_column text default null)
returns void
language plpgsql as $$
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return;
    end if;
    if not exists (select from pg_dist_partition where logicalrelid = 'production.orders'::regclass) then
        return;
    end if;
    if distribution_column is null then
        perform create_reference_table(work_table);
    else
        perform create_distributed_table(work_table, distribution_column, colocate_with => 'production.orders');
    end if;
end
$$;
