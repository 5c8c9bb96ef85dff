-- A hand-made warehouse with answers worked out by hand (tests/integration/test_analytics.py).
-- Dates, statuses and payment methods come from the warehouse's own SQL; this file adds four customers,
-- three products and six orders (seven lines) between 2025-01-04 and 2025-03-03.
insert into warehouse.dim_customer (customer_key, customer_id, first_name, last_name, full_name, email, city, state,
                                    country, segment, row_hash, valid_from, valid_to, is_current)
values
    (1, 'C1', 'Alice', 'Archer', 'Alice Archer', 'alice@example.com', 'Albany', 'NY', 'US', 'Northeast', 'h1',
     '1900-01-01', '9999-12-31', true),
    (2, 'C2', 'Bob', 'Baker', 'Bob Baker', 'bob@example.com', 'Fresno', 'CA', 'US', 'West', 'h2',
     '1900-01-01', '9999-12-31', true),
    (3, 'C3', 'Cara', 'Cole', 'Cara Cole', 'cara@example.com', 'Austin', 'TX', 'US', 'South', 'h3',
     '1900-01-01', '9999-12-31', true),
    (4, 'C4', 'Dan', 'Dunn', 'Dan Dunn', 'dan@example.com', 'Buffalo', 'NY', 'US', 'Northeast', 'h4',
     '1900-01-01', '9999-12-31', true);

insert into warehouse.dim_product (product_key, product_id, product_name, category, sub_category, brand, price, cost,
                                   price_band, row_hash, valid_from, valid_to, is_current)
values
    (1, 'P1', 'Voltix Laptop Pro', 'Electronics', 'Laptops', 'Voltix', 1000, 800, 'premium', 'h1',
     '1900-01-01', '9999-12-31', true),
    (2, 'P2', 'Folio Novel', 'Books', 'Fiction', 'Folio', 20, 14, 'budget', 'h2',
     '1900-01-01', '9999-12-31', true),
    (3, 'P3', 'Urbano Shirt', 'Fashion', 'Shirts', 'Urbano', 50, 25, 'mid', 'h3',
     '1900-01-01', '9999-12-31', true);

-- O1 Sat Jan 4, delivered; O2 Mon Jan 6, delivered; O3 Mon Feb 3, delivered; O4 Sat Feb 8, cancelled;
-- O5 Sat Mar 1, returned; O6 Mon Mar 3, shipped.
insert into warehouse.fact_sales (order_item_id, order_id, date_key, customer_key, product_key, status_key,
                                  payment_method_key, customer_id, product_id, order_ts, quantity, unit_price,
                                  discount_amount, line_total, cost_amount, profit, batch_id)
select l.item, l.order_id, to_char(l.ts, 'YYYYMMDD')::integer, c.customer_key, p.product_key, s.status_key,
       m.payment_method_key, l.customer_id, l.product_id, l.ts, l.quantity, l.unit_price, l.discount,
       l.quantity * l.unit_price - l.discount, l.cost, l.quantity * l.unit_price - l.discount - l.cost, 'hand'
from (values
    ('L1', 'O1', 'C1', 'P1', 'delivered', 'credit_card', timestamptz '2025-01-04 10:00+00', 1, 1000.00, 0.00, 800.00),
    ('L2', 'O1', 'C1', 'P2', 'delivered', 'credit_card', timestamptz '2025-01-04 10:00+00', 2, 20.00, 4.00, 28.00),
    ('L3', 'O2', 'C2', 'P3', 'delivered', 'upi', timestamptz '2025-01-06 12:00+00', 2, 50.00, 0.00, 50.00),
    ('L4', 'O3', 'C1', 'P3', 'delivered', 'credit_card', timestamptz '2025-02-03 09:00+00', 1, 50.00, 0.00, 25.00),
    ('L5', 'O4', 'C3', 'P1', 'cancelled', 'cash_on_delivery', timestamptz '2025-02-08 15:00+00', 1, 1000.00, 0.00,
     800.00),
    ('L6', 'O5', 'C4', 'P2', 'returned', 'debit_card', timestamptz '2025-03-01 11:00+00', 1, 20.00, 0.00, 14.00),
    ('L7', 'O6', 'C2', 'P2', 'shipped', 'credit_card', timestamptz '2025-03-03 18:00+00', 5, 20.00, 10.00, 70.00)
) as l (item, order_id, customer_id, product_id, status, method, ts, quantity, unit_price, discount, cost)
join warehouse.dim_customer as c on c.customer_id = l.customer_id
join warehouse.dim_product as p on p.product_id = l.product_id
join warehouse.dim_status as s on s.status = l.status
join warehouse.dim_payment_method as m on m.payment_method = l.method;
