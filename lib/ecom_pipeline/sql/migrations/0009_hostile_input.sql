-- Hostile input: no value that a pattern accepts may fail its cast, no row that production accepts may
-- overflow the warehouse, and ingest accounts for physical lines.

-- Patterns spell digits [0-9]: in a UTF-8 database \d also matches digits of other scripts ("٣"), which
-- the casts refuse. Years start at 0001 (PostgreSQL has no year 0) and offsets stay within +-15:59, the
-- ranges PostgreSQL's own input functions accept.
create or replace function production.is_date(value text) returns boolean
language sql immutable parallel safe as $$
    select case
        when value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then false
        else substr(value, 9, 2)::int
             between 1 and production.days_in_month(substr(value, 1, 4)::int, substr(value, 6, 2)::int)
    end
$$;

create or replace function production.is_timestamp(value text) returns boolean
language sql immutable parallel safe as $$
    select case
        when value !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?$'
            then false
        when substr(value, 1, 4) = '0000' then false
        when substr(value, 9, 2) <= '28' then true
        else substr(value, 9, 2)::int <= production.days_in_month(substr(value, 1, 4)::int, substr(value, 6, 2)::int)
    end
$$;

-- Text that casts to numeric(integer_digits + scale, scale) without rounding or overflow.
create function production.is_decimal(value text, integer_digits integer, scale integer) returns boolean
language sql immutable parallel safe as $$
    select coalesce(value ~ ('^[+-]?[0-9]{1,' || integer_digits || '}(\.[0-9]{1,' || scale || '})?$'), false)
$$;

-- numeric(12, 2): every money column of production.
create or replace function production.is_money(value text) returns boolean
language sql immutable parallel safe as $$
    select coalesce(value ~ '^[+-]?[0-9]{1,10}(\.[0-9]{1,2})?$', false)
$$;

create or replace function production.is_integer(value text) returns boolean
language sql immutable parallel safe as $$
    select coalesce(value ~ '^[+-]?[0-9]{1,9}$', false)
$$;

-- Ingest counts physical lines: a staged record whose quoted fields hold line breaks covers several.
alter table staging.ingestion_log
    add column continued_lines bigint not null default 0 check (continued_lines >= 0),
    drop constraint ingestion_log_check,
    add constraint ingestion_log_lines_check check (lines_read = rows_staged + continued_lines + lines_rejected);

-- A rejected line is kept up to a cap; its full length says whether it was cut.
alter table staging.rejected_lines add column line_length bigint;

-- The warehouse holds whatever production accepts: an integer quantity times a numeric(12, 2) price needs
-- 20 integer digits, and sums over many lines more. The bi views depend on these columns, so they are
-- dropped and re-created from their own definitions, in the order they were made.
create temp table saved_views on commit drop as
select c.oid, n.nspname, c.relname, pg_get_viewdef(c.oid) as definition
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind = 'v' and n.nspname = 'bi';

do $$
declare
    v record;
begin
    for v in select * from saved_views order by oid desc loop
        execute format('drop view %I.%I', v.nspname, v.relname);
    end loop;
end
$$;

alter table warehouse.fact_sales
    alter column discount_amount type numeric(22, 2),
    alter column cost_amount type numeric(22, 2),
    alter column profit type numeric(22, 2);

alter table warehouse.agg_daily_sales
    alter column items type bigint,
    alter column revenue type numeric(38, 2),
    alter column profit type numeric(38, 2),
    alter column avg_order_value type numeric(38, 2);

alter table warehouse.agg_product_performance
    alter column quantity type bigint,
    alter column revenue type numeric(38, 2),
    alter column profit type numeric(38, 2),
    alter column margin type numeric(38, 4),
    alter column avg_discount_pct type numeric(38, 2);

alter table warehouse.agg_customer_metrics
    alter column total_spent type numeric(38, 2),
    alter column avg_order_value type numeric(38, 2),
    alter column lifetime_value type numeric(38, 2);

do $$
declare
    v record;
begin
    for v in select * from saved_views order by oid loop
        execute format('create view %I.%I as %s', v.nspname, v.relname, v.definition);
    end loop;
end
$$;
