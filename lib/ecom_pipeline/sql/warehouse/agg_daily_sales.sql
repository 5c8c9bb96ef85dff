-- Daily sales for the days whose facts this load wrote. Sales measures count revenue statuses only
-- (dim_status.is_revenue); order counts count every order placed that day.
create temp table touched_dates on commit drop as
select distinct date_key from warehouse.fact_sales where loaded_at = now();

delete from warehouse.agg_daily_sales where date_key in (select date_key from touched_dates);

with facts as (
    select f.*, s.status, s.is_revenue
    from warehouse.fact_sales as f
    join warehouse.dim_status as s on s.status_key = f.status_key
    where f.date_key in (select date_key from touched_dates)
),

final as (
    select
        f.date_key,
        d.full_date,
        count(distinct f.order_id) as orders,
        coalesce(sum(f.quantity) filter (where f.is_revenue), 0) as items,
        coalesce(sum(f.line_total) filter (where f.is_revenue), 0) as revenue,
        coalesce(sum(f.profit) filter (where f.is_revenue), 0) as profit,
        count(distinct f.customer_id) as unique_customers,
        round(sum(f.line_total) filter (where f.is_revenue)
              / nullif(count(distinct f.order_id) filter (where f.is_revenue), 0), 2) as avg_order_value,
        count(distinct f.order_id) filter (where f.status = 'cancelled') as cancelled_orders,
        count(distinct f.order_id) filter (where f.status = 'returned') as returned_orders
    from facts as f
    join warehouse.dim_date as d on d.date_key = f.date_key
    group by f.date_key, d.full_date
)

insert into warehouse.agg_daily_sales
select * from final;
