-- Order statuses, keyed by their natural value so they never duplicate.
insert into warehouse.dim_status (status_key, status, lifecycle_stage, is_revenue, is_final)
select
    s.ordinality::smallint as status_key,
    s.status,
    case
        when s.status in ('pending', 'processing') then 'open'
        when s.status = 'shipped' then 'in transit'
        when s.status = 'delivered' then 'completed'
        else 'reversed'
    end as lifecycle_stage,
    s.status = any (:revenue_statuses::text[]) as is_revenue,
    s.status in ('delivered', 'cancelled', 'returned') as is_final
from unnest(:statuses::text[]) with ordinality as s (status, ordinality)
on conflict (status) do update set
    lifecycle_stage = excluded.lifecycle_stage,
    is_revenue = excluded.is_revenue,
    is_final = excluded.is_final;
