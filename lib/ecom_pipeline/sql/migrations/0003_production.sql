-- The production layer: typed, normalised, constrained; plus the quarantine.

-- Validity tests used by the clean stage instead of casts that could fail.
-- Plain integer arithmetic: these run for every staged value.
create function production.days_in_month(year int, month int) returns int
language sql immutable parallel safe as $$
    select case
        when year < 1 then 0
        when month in (1, 3, 5, 7, 8, 10, 12) then 31
        when month in (4, 6, 9, 11) then 30
        when month = 2 and year % 4 = 0 and (year % 100 <> 0 or year % 400 = 0) then 29
        when month = 2 then 28
        else 0
    end
$$;

-- CASE (not AND) guarantees a cast only runs on text that passed the pattern.
create function production.is_date(value text) returns boolean
language sql immutable parallel safe as $$
    select case
        when value !~ '^\d{4}-\d{2}-\d{2}$' then false
        else substr(value, 9, 2)::int
             between 1 and production.days_in_month(substr(value, 1, 4)::int, substr(value, 6, 2)::int)
    end
$$;

-- One pattern checks the shape and the ranges; only days 29-31 need the calendar.
create function production.is_timestamp(value text) returns boolean
language sql immutable parallel safe as $$
    select case
        when value !~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$'
            then false
        when substr(value, 9, 2) <= '28' then true
        else substr(value, 9, 2)::int <= production.days_in_month(substr(value, 1, 4)::int, substr(value, 6, 2)::int)
    end
$$;

create function production.is_money(value text) returns boolean
language sql immutable parallel safe as $$
    select coalesce(value ~ '^[+-]?\d{1,10}(\.\d{1,2})?$', false)
$$;

create function production.is_integer(value text) returns boolean
language sql immutable parallel safe as $$
    select coalesce(value ~ '^[+-]?\d{1,9}$', false)
$$;

-- Trim spaces, tabs and line breaks; empty becomes null.
create function production.squish(value text) returns text
language sql immutable parallel safe as $$
    select nullif(btrim(value, E' \t\r\n\f\v'), '')
$$;

-- squish, and runs of white space inside the text become one space (names, addresses).
create function production.squish_text(value text) returns text
language sql immutable parallel safe as $$
    select nullif(btrim(regexp_replace(value, '\s+', ' ', 'g')), '')
$$;

-- Re-case only text written all in one case ("ANA", "ana" -> "Ana"; "McDonald" stays).
-- Takes squished text: the argument should be a plain column so that the function is inlined.
create function production.recase(value text) returns text
language sql immutable parallel safe as $$
    select case when value = lower(value) or value = upper(value) then initcap(lower(value)) else value end
$$;

create table production.customers (
    customer_id        text primary key,
    first_name         text not null,
    last_name          text not null,
    email              text not null,
    phone              text,
    address            text,
    city               text,
    state              text,
    country            text,
    registration_date  date not null,
    updated_at         timestamptz not null,       -- the source's updated_at
    created_at         timestamptz not null default now(),
    changed_at         timestamptz not null default now(),
    batch_id           text not null,              -- batch that last changed the row
    constraint customers_email_key unique (email)
);

create table production.products (
    product_id      text primary key,
    product_name    text not null,
    category        text not null,
    sub_category    text,
    brand           text,
    price           numeric(12, 2) not null check (price > 0),
    cost            numeric(12, 2) not null check (cost >= 0),
    stock_quantity  integer check (stock_quantity >= 0),
    profit_margin   numeric(7, 4) not null,
    price_band      text not null check (price_band in ('budget', 'mid', 'premium')),
    updated_at      timestamptz not null,
    created_at      timestamptz not null default now(),
    changed_at      timestamptz not null default now(),
    batch_id        text not null,
    check (cost <= price)
);

create table production.orders (
    order_id          text primary key,
    customer_id       text not null references production.customers (customer_id),
    order_date        timestamptz not null,
    status            text not null
        check (status in ('pending', 'processing', 'shipped', 'delivered', 'cancelled', 'returned')),
    payment_method    text not null
        check (payment_method in ('credit_card', 'debit_card', 'upi', 'cash_on_delivery', 'net_banking', 'wallet')),
    shipping_address  text,
    total_amount      numeric(12, 2) not null check (total_amount >= 0),
    updated_at        timestamptz not null,
    created_at        timestamptz not null default now(),
    changed_at        timestamptz not null default now(),
    batch_id          text not null
);

create table production.order_items (
    order_item_id        text primary key,
    order_id             text not null references production.orders (order_id),
    product_id           text not null references production.products (product_id),
    quantity             integer not null check (quantity > 0),
    unit_price           numeric(12, 2) not null check (unit_price >= 0),
    discount_percentage  numeric(5, 2) not null check (discount_percentage between 0 and 100),
    line_total           numeric(12, 2) not null check (line_total >= 0),
    created_at           timestamptz not null default now(),
    batch_id             text not null
);

create index orders_customer_idx on production.orders (customer_id);
create index orders_order_date_idx on production.orders (order_date);
create index order_items_order_idx on production.order_items (order_id);
create index order_items_product_idx on production.order_items (product_id);
create index products_category_idx on production.products (category);

-- Every row that failed a rule, with all its reasons and its raw values.
create table production.quarantine (
    quarantine_id  bigint generated always as identity primary key,
    batch_id       text not null,
    source_table   text not null,
    source_file    text not null,
    source_line    bigint not null,
    natural_key    text,
    reasons        text[] not null check (cardinality(reasons) > 0),
    raw_values     jsonb not null,
    run_id         text not null,
    quarantined_at timestamptz not null default now(),
    reviewed_at    timestamptz
);

create index quarantine_batch_idx on production.quarantine (batch_id, source_table);
create index quarantine_key_idx on production.quarantine (source_table, natural_key);

-- What the clean stage did with each staged row, per batch and table.
create table production.clean_log (
    batch_id     text not null,
    table_name   text not null,
    staged       bigint not null,
    inserted     bigint not null,
    updated      bigint not null,
    unchanged    bigint not null,
    stale        bigint not null,
    duplicates   bigint not null,
    quarantined  bigint not null,
    run_id       text not null,
    cleaned_at   timestamptz not null default now(),
    primary key (batch_id, table_name),
    check (staged = inserted + updated + unchanged + stale + duplicates + quarantined)
);

-- Every version production took of a customer or product, in the order it took them: the history the
-- warehouse's slowly changing dimensions are built from, whatever batches a run cleaned at once.
create table production.customer_changes (
    customer_id  text not null,
    first_name   text not null,
    last_name    text not null,
    email        text not null,
    city         text,
    state        text,
    country      text,
    updated_at   timestamptz not null,
    batch_id     text not null,
    primary key (customer_id, updated_at)
);

create table production.product_changes (
    product_id    text not null,
    product_name  text not null,
    category      text not null,
    sub_category  text,
    brand         text,
    price         numeric(12, 2) not null,
    cost          numeric(12, 2) not null,
    price_band    text not null,
    updated_at    timestamptz not null,
    batch_id      text not null,
    primary key (product_id, updated_at)
);

create index customer_changes_batch_idx on production.customer_changes (batch_id);
create index product_changes_batch_idx on production.product_changes (batch_id);
