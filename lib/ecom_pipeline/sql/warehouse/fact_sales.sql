-- fact_sales at order-line grain, loaded from what the batches changed.
-- Customer and product keys point at the dimension version valid at the order's time.
-- A status (or payment) change of an order updates its fact rows: facts carry the order's current state.
create temp table touched_orders on commit drop as
select order_id from production.order_items where batch_id = any (:batch_ids::text[])
union
select order_id from production.orders where batch_id = any (:batch_ids::text[]);

-- Statistics for what this transaction just wrote, or the planner takes it for empty and nests loops.
analyze touched_orders;
analyze scd_customer;
analyze scd_product;
analyze warehouse.dim_customer;
analyze warehouse.dim_product;

create temp table fact_source on commit drop as
with lines as (
    select i.*
    from production.order_items as i
    where i.order_id in (select order_id from touched_orders)
),

final as (
    select
        i.order_item_id,
        o.order_id,
        to_char(o.order_date at time zone 'UTC', 'YYYYMMDD')::integer as date_key,
        coalesce(dc.customer_key, -1) as customer_key,
        coalesce(dp.product_key, -1) as product_key,
        s.status_key,
        pm.payment_method_key,
        o.customer_id,
        i.product_id,
        o.order_date as order_ts,
        i.quantity,
        i.unit_price,
        i.quantity * i.unit_price - i.line_total as discount_amount,
        i.line_total,
        i.quantity * coalesce(dp.cost, 0) as cost_amount,
        i.line_total - i.quantity * coalesce(dp.cost, 0) as profit,
        i.batch_id
    from lines as i
    join production.orders as o on o.order_id = i.order_id
    join warehouse.dim_status as s on s.status = o.status
    join warehouse.dim_payment_method as pm on pm.payment_method = o.payment_method
    left join warehouse.dim_customer as dc
        on dc.customer_id = o.customer_id and o.order_date >= dc.valid_from and o.order_date < dc.valid_to
    left join warehouse.dim_product as dp
        on dp.product_id = i.product_id and o.order_date >= dp.valid_from and o.order_date < dp.valid_to
)

select * from final;

insert into warehouse.fact_sales (order_item_id, order_id, date_key, customer_key, product_key, status_key,
                                  payment_method_key, customer_id, product_id, order_ts, quantity, unit_price,
                                  discount_amount, line_total, cost_amount, profit, batch_id)
select order_item_id, order_id, date_key, customer_key, product_key, status_key, payment_method_key, customer_id,
       product_id, order_ts, quantity, unit_price, discount_amount, line_total, cost_amount, profit, batch_id
from fact_source
on conflict (order_item_id) do update set
    status_key = excluded.status_key,
    payment_method_key = excluded.payment_method_key,
    customer_key = excluded.customer_key,
    product_key = excluded.product_key,
    cost_amount = excluded.cost_amount,
    profit = excluded.profit,
    loaded_at = now()
where (warehouse.fact_sales.status_key, warehouse.fact_sales.payment_method_key,
       warehouse.fact_sales.customer_key, warehouse.fact_sales.product_key)
      is distinct from (excluded.status_key, excluded.payment_method_key, excluded.customer_key,
                        excluded.product_key);

analyze warehouse.fact_sales;

-- A new dimension version can change which version earlier facts of that customer or product belong to
-- (late-arriving changes, first versions of facts that pointed at "unknown").
update warehouse.fact_sales as f
set customer_key = d.customer_key, loaded_at = now()
from warehouse.dim_customer as d
where f.customer_id in (select customer_id from scd_customer)
  and d.customer_id = f.customer_id and f.order_ts >= d.valid_from and f.order_ts < d.valid_to
  and f.customer_key <> d.customer_key;

update warehouse.fact_sales as f
set product_key = d.product_key, cost_amount = f.quantity * d.cost, profit = f.line_total - f.quantity * d.cost,
    loaded_at = now()
from warehouse.dim_product as d
where f.product_id in (select product_id from scd_product)
  and d.product_id = f.product_id and f.order_ts >= d.valid_from and f.order_ts < d.valid_to
  and f.product_key <> d.product_key;
