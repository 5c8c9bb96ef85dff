-- Daily sales for the days whose facts this load wrote. Sales measures count revenue statuses only
-- (dim_status.is_revenue); order counts count every order placed that day.
create temp table touched_dates on commit drop as
select distinct date_key from warehouse.fact_sales where loaded_at = now();

delete from warehouse.agg_daily_sales where date_key in (select date_key from touched_dates);

analyze touched_dates;

with orders as (
    -- One row per order first, so the day's figures are plain sums and counts.
    select
        f.date_key,
        f.order_id,
        f.customer_id,
        s.status,
        s.is_revenue,
        sum(f.quantity) as quantity,
        sum(f.line_total) as revenue,
        sum(f.profit) as profit
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.date_key in (select date_key from touched_dates)
    group by f.date_key, f.order_id, f.customer_id, s.status, s.is_revenue
),

final as (
    select
        o.date_key,
        d.full_date,
        count(*) as orders,
        coalesce(sum(o.quantity) filter (where o.is_revenue), 0) as items,
        coalesce(sum(o.revenue) filter (where o.is_revenue), 0) as revenue,
        coalesce(sum(o.profit) filter (where o.is_revenue), 0) as profit,
        count(distinct o.customer_id) as unique_customers,
        round(avg(o.revenue) filter (where o.is_revenue), 2) as avg_order_value,
        count(*) filter (where o.status = 'cancelled') as cancelled_orders,
        count(*) filter (where o.status = 'returned') as returned_orders
    from orders as o
    join warehouse.dim_date as d on d.date_key = o.date_key
    group by o.date_key, d.full_date
)

insert into warehouse.agg_daily_sales
select * from final;
