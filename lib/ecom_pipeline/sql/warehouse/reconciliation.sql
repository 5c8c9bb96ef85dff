-- Revenue, quantity and profit as each layer sees them; every row must agree with fact_sales.
-- Production keeps only each product's current cost, so its profit is not comparable (null).
select 'production' as source, sum(i.line_total) as revenue, sum(i.quantity) as quantity, null::numeric as profit
from production.order_items as i
join production.orders as o on o.order_id = i.order_id
join warehouse.dim_status as s on s.status = o.status
where s.is_revenue

union all

select 'fact_sales', sum(f.line_total), sum(f.quantity), sum(f.profit)
from warehouse.fact_sales as f
join warehouse.dim_status as s on s.status_key = f.status_key
where s.is_revenue

union all

select 'agg_daily_sales', sum(revenue), sum(items), sum(profit) from warehouse.agg_daily_sales

union all

select 'agg_product_performance', sum(revenue), sum(quantity), sum(profit) from warehouse.agg_product_performance

union all

select 'agg_customer_metrics', sum(total_spent), null, null from warehouse.agg_customer_metrics
