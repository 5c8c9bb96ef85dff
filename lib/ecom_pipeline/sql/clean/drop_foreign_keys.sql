-- Bulk path for a large batch: per-row foreign key checks cost more than the load itself, so the
-- constraints are dropped for the batch's transaction and re-added (and so re-validated in one pass)
-- by add_foreign_keys.sql before it commits.
alter table production.order_items
    drop constraint order_items_order_id_fkey,
    drop constraint order_items_product_id_fkey;
alter table production.orders
    drop constraint orders_customer_id_fkey;
