-- Working rows of the clean stage. Each staged order and order line of a batch, typed and checked on its
-- own (no other row, no other table), is written here by parallel slices of the batch before the
-- batch's transaction; the transaction then adds the checks that need other rows and writes production.
-- Unlogged: scratch data, emptied before every batch, never worth a WAL record or a replica's disk.
create schema work;

create unlogged table work.orders_rows (
    batch_id          text not null,
    source_line       bigint not null,
    source_file       text not null,
    copy_number       bigint not null,
    order_id          text,
    customer_id       text,
    order_date_text   text,
    status            text,
    payment_method    text,
    shipping_address  text,
    total_text        text,
    updated_at_text   text,
    order_date        timestamptz,
    total_amount      numeric(12, 2),
    updated_at        timestamptz,
    row_reasons       text[] not null
);

create unlogged table work.order_items_rows (
    batch_id             text not null,
    source_line          bigint not null,
    source_file          text not null,
    copy_number          bigint not null,
    counts_in_total      boolean not null,
    order_item_id        text,
    order_id             text,
    product_id           text,
    quantity_text        text,
    unit_price_text      text,
    discount_text        text,
    line_total_text      text,
    quantity             integer,
    unit_price           numeric(12, 2),
    discount_percentage  numeric(5, 2),
    line_total           numeric(12, 2),
    row_reasons          text[] not null
);
