-- Daily sales for the days whose facts this load wrote. Sales measures count revenue statuses only
-- (dim_status.is_revenue); order counts count every order placed that day.
create unlogged table work.touched_dates as
select distinct date_key from warehouse.fact_sales where loaded_at = :loaded_at;

delete from warehouse.agg_daily_sales where date_key in (select date_key from work.touched_dates);

analyze work.touched_dates;

with lines as (
    -- The day's lines, grouped once: an order's lines share its day, customer and status, so orders are
    -- counted as distinct order ids and an order's value is the day's revenue over its revenue orders.
    -- Ids compared byte by byte ("C"): the same groups, sorted faster.
    select
        f.date_key,
        f.order_id collate "C" as order_id,
        f.customer_id collate "C" as customer_id,
        s.status,
        s.is_revenue,
        f.quantity,
        f.line_total,
        f.profit
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.date_key in (select date_key from work.touched_dates)
),

days as (
    select
        l.date_key,
        count(distinct l.order_id) as orders,
        coalesce(sum(l.quantity) filter (where l.is_revenue), 0) as items,
        coalesce(sum(l.line_total) filter (where l.is_revenue), 0) as revenue,
        coalesce(sum(l.profit) filter (where l.is_revenue), 0) as profit,
        count(distinct l.customer_id) as unique_customers,
        count(distinct l.order_id) filter (where l.is_revenue) as revenue_orders,
        count(distinct l.order_id) filter (where l.status = 'cancelled') as cancelled_orders,
        count(distinct l.order_id) filter (where l.status = 'returned') as returned_orders
    from lines as l
    group by l.date_key
),

final as (
    select
        y.date_key,
        d.full_date,
        y.orders,
        y.items,
        y.revenue,
        y.profit,
        y.unique_customers,
        round(y.revenue / nullif(y.revenue_orders, 0), 2) as avg_order_value,
        y.cancelled_orders,
        y.returned_orders
    from days as y
    join warehouse.dim_date as d on d.date_key = y.date_key
)

insert into warehouse.agg_daily_sales
select * from final;
