-- Re-adding a foreign key validates every row in one set-based pass; a violation aborts the batch.
alter table production.orders
    add constraint orders_customer_id_fkey foreign key (customer_id) references production.customers (customer_id);
alter table production.order_items
    add constraint order_items_order_id_fkey foreign key (order_id) references production.orders (order_id),
    add constraint order_items_product_id_fkey foreign key (product_id) references production.products (product_id);
