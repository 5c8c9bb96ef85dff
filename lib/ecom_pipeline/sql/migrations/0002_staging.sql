-- Raw landing tables: every contract column as text, so no dirty value can
-- break a load, plus the lineage of each row. Each table is partitioned by
-- batch: ingest creates a batch's partition with batch_id, run_id and
-- source_file as its column defaults, and source_line comes from a per-table
-- sequence reset per file, so a plain COPY of the file's bytes fills them all.
-- Replacing a batch truncates its partition; retention drops it.
create sequence staging.customers_line_seq;
create sequence staging.products_line_seq;
create sequence staging.orders_line_seq;
create sequence staging.order_items_line_seq;

create table staging.customers (
    customer_id        text,
    first_name         text,
    last_name          text,
    email              text,
    phone              text,
    address            text,
    city               text,
    state              text,
    country            text,
    registration_date  text,
    updated_at         text,
    batch_id     text not null,
    run_id       text not null,
    source_file  text not null,
    source_line  bigint not null default nextval('staging.customers_line_seq'),
    loaded_at    timestamptz not null default now()
) partition by list (batch_id);

create table staging.products (
    product_id      text,
    product_name    text,
    category        text,
    sub_category    text,
    brand           text,
    price           text,
    cost            text,
    stock_quantity  text,
    updated_at      text,
    batch_id     text not null,
    run_id       text not null,
    source_file  text not null,
    source_line  bigint not null default nextval('staging.products_line_seq'),
    loaded_at    timestamptz not null default now()
) partition by list (batch_id);

create table staging.orders (
    order_id          text,
    customer_id       text,
    order_date        text,
    status            text,
    payment_method    text,
    shipping_address  text,
    total_amount      text,
    updated_at        text,
    batch_id     text not null,
    run_id       text not null,
    source_file  text not null,
    source_line  bigint not null default nextval('staging.orders_line_seq'),
    loaded_at    timestamptz not null default now()
) partition by list (batch_id);

create table staging.order_items (
    order_item_id        text,
    order_id             text,
    product_id           text,
    quantity             text,
    unit_price           text,
    discount_percentage  text,
    line_total           text,
    batch_id     text not null,
    run_id       text not null,
    source_file  text not null,
    source_line  bigint not null default nextval('staging.order_items_line_seq'),
    loaded_at    timestamptz not null default now()
) partition by list (batch_id);

-- One row per batch folder seen by ingest.
create table staging.batches (
    batch_id      text primary key,
    source_path   text not null,
    status        text not null check (status in ('loaded', 'rejected')),
    message       text,
    run_id        text not null,
    loaded_at     timestamptz not null default now()
);

-- One row per file and batch: what was read, staged and rejected.
create table staging.ingestion_log (
    batch_id        text not null,
    table_name      text not null,
    source_file     text not null,
    sha256          text not null,
    size_bytes      bigint not null,
    lines_read      bigint not null,
    rows_staged     bigint not null,
    lines_rejected  bigint not null,
    extra_columns   text[] not null default '{}',
    load_path       text not null check (load_path in ('copy', 'parsed', 'empty')),
    started_at      timestamptz not null,
    duration_s      double precision not null,
    run_id          text not null,
    primary key (batch_id, table_name),
    check (lines_read = rows_staged + lines_rejected)
);

-- Lines that could not be staged at all, with the reason.
create table staging.rejected_lines (
    batch_id      text not null,
    table_name    text not null,
    source_file   text not null,
    source_line   bigint not null,
    reason        text not null,
    raw_line      text not null,
    run_id        text not null,
    rejected_at   timestamptz not null default now()
);

create index rejected_lines_batch_idx on staging.rejected_lines (batch_id, table_name);
