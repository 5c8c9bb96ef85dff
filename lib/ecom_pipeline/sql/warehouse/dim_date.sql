-- Calendar days from :first_date to :last_date; existing days are kept (keys never change).
with days as (
    select day::date as full_date
    from generate_series(:first_date::date, :last_date::date, interval '1 day') as day
),

holidays as (
    select (h ->> 0)::date as full_date, h ->> 1 as holiday_name
    from jsonb_array_elements(:holidays::jsonb) as h
),

final as (
    select
        to_char(d.full_date, 'YYYYMMDD')::integer as date_key,
        d.full_date,
        extract(year from d.full_date)::smallint as year,
        extract(quarter from d.full_date)::smallint as quarter,
        extract(month from d.full_date)::smallint as month,
        to_char(d.full_date, 'FMMonth') as month_name,
        extract(isoyear from d.full_date)::smallint as iso_year,
        extract(week from d.full_date)::smallint as iso_week,
        extract(day from d.full_date)::smallint as day_of_month,
        extract(isodow from d.full_date)::smallint as day_of_week,
        to_char(d.full_date, 'FMDay') as day_name,
        extract(isodow from d.full_date) >= 6 as is_weekend,
        h.full_date is not null as is_holiday,
        h.holiday_name
    from days as d
    left join holidays as h on h.full_date = d.full_date
)

insert into warehouse.dim_date
select * from final
on conflict (date_key) do nothing;
