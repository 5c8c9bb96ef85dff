-- staging.customers of one batch -> production.customers, failures -> production.quarantine.
-- Makes clean_customers (one action per staged row, in the order of production.clean_action), which
-- clean/quarantine.sql and clean.py's counts read next.
-- Every staged row gets exactly one action: duplicate, quarantined, stale, insert, update or unchanged.
create unlogged table work.clean_customers as
with source as (
    select * from staging.customers where batch_id = :batch_id
),

collapsed as (
    -- Exact duplicate lines collapse onto the first one.
    -- Keys compared byte by byte ("C"): the same groups as the database's collation, but sorted several
    -- times faster (PostgreSQL uses abbreviated keys only for "C").
    select s.*, row_number() over (
        partition by customer_id collate "C", first_name collate "C", last_name collate "C", email collate "C",
                     phone collate "C", address collate "C", city collate "C", state collate "C",
                     country collate "C", registration_date collate "C", updated_at collate "C"
        order by source_line) as copy_number
    from source as s
),

squished as materialized (
    -- White space trimmed once (and collapsed in free text), so later expressions work on plain columns.
    select
        c.source_line,
        c.source_file,
        c.copy_number,
        nullif(regexp_replace(c.phone, '[^0-9+]', '', 'g'), '') as phone,
        production.squish(c.customer_id) as customer_id,
        production.squish_text(c.first_name) as first_name,
        production.squish_text(c.last_name) as last_name,
        production.squish(c.email) as email,
        production.squish_text(c.address) as address,
        production.squish_text(c.city) as city,
        production.squish(c.state) as state,
        production.squish(c.country) as country,
        production.squish(c.registration_date) as registration_date,
        production.squish(c.updated_at) as updated_at
    from collapsed as c
),

normalised as (
    select
        s.source_line,
        s.source_file,
        s.copy_number,
        s.customer_id,
        production.recase(s.first_name) as first_name,
        production.recase(s.last_name) as last_name,
        lower(s.email) as email,
        s.phone,
        s.address,
        production.recase(s.city) as city,
        upper(s.state) as state,
        upper(s.country) as country,
        s.registration_date as registration_date_text,
        s.updated_at as updated_at_text
    from squished as s
),

typed as materialized (
    select
        n.*,
        case when production.is_date(n.registration_date_text) then n.registration_date_text::date end
            as registration_date,
        case when production.is_timestamp(n.updated_at_text) then n.updated_at_text::timestamptz end as updated_at,
        array_remove(array[
            case when n.customer_id is null or n.first_name is null or n.last_name is null or n.email is null
                      or n.registration_date_text is null or n.updated_at_text is null
                 then 'MISSING_VALUE' end,
            -- 254 characters: the longest address SMTP carries (RFC 5321).
            case when n.email !~ :email_pattern or length(n.email) > 254 then 'INVALID_EMAIL' end,
            case when not production.is_date(n.registration_date_text)
                      or not production.is_timestamp(n.updated_at_text)
                 then 'MALFORMED_DATE' end,
            case when length(n.customer_id) > :max_key_length then 'VALUE_TOO_LONG' end
        ], null) as rule_failures
    from normalised as n
),

in_range as (
    -- Ranges are judged on the typed values, which only exist once the select above has made them.
    select
        t.*,
        t.rule_failures || array_remove(array[
            case when t.registration_date > (now() + make_interval(hours => :future_tolerance_hours))::date
                      or t.updated_at > now() + make_interval(hours => :future_tolerance_hours)
                 then 'FUTURE_DATE' end,
            case when t.registration_date < :earliest_date or t.updated_at < :earliest_date
                 then 'DATE_TOO_EARLY' end
        ], null) as range_failures
    from typed as t
),

emails as materialized (
    -- A second customer id with an e-mail already taken (in production, or earlier in this batch).
    select
        t.*,
        case
            when t.copy_number = 1 and t.range_failures = '{}' and (
                exists (select 1 from production.customers as p
                        where p.email = t.email and p.customer_id <> t.customer_id)
                or t.customer_id <> first_value(t.customer_id) over (
                    partition by case when t.copy_number = 1 and t.range_failures = '{}' then t.email end collate "C"
                    order by t.source_line)
            ) then t.range_failures || 'DUPLICATE_EMAIL'::text
            else t.range_failures
        end as reasons
    from in_range as t
),

ranked as (
    select
        e.*,
        row_number() over (
            partition by case when e.copy_number = 1 and e.reasons = '{}' then e.customer_id end collate "C"
            order by e.updated_at desc, e.source_line desc) as newest_first
    from emails as e
),

final as (
    select
        r.*,
        r.customer_id as natural_key,
        production.clean_action(
            r.copy_number, r.reasons, r.newest_first, p.customer_id is not null, r.updated_at > p.updated_at,
            not (  -- not distinct: equal, nulls included
                (r.first_name, r.last_name, r.email, r.phone, r.address, r.city, r.state, r.country,
                 r.registration_date, r.updated_at)
                is distinct from
                (p.first_name, p.last_name, p.email, p.phone, p.address, p.city, p.state, p.country,
                 p.registration_date, p.updated_at)
            )
        ) as action
    from ranked as r
    left join production.customers as p on p.customer_id = r.customer_id
)

select * from final;

insert into production.customers as p (customer_id, first_name, last_name, email, phone, address, city, state,
                                       country, registration_date, updated_at, changed_at, batch_id)
select customer_id, first_name, last_name, email, phone, address, city, state, country, registration_date,
       updated_at, now(), :batch_id
from work.clean_customers
where action in ('insert', 'update')
on conflict (customer_id) do update set
    first_name = excluded.first_name,
    last_name = excluded.last_name,
    email = excluded.email,
    phone = excluded.phone,
    address = excluded.address,
    city = excluded.city,
    state = excluded.state,
    country = excluded.country,
    registration_date = excluded.registration_date,
    updated_at = excluded.updated_at,
    changed_at = excluded.changed_at,  -- the load's time, given above: a distributed table takes no now() here
    batch_id = excluded.batch_id;

insert into production.customer_changes (customer_id, first_name, last_name, email, city, state, country, updated_at,
                                         batch_id)
select customer_id, first_name, last_name, email, city, state, country, updated_at, :batch_id
from work.clean_customers
where action in ('insert', 'update');
