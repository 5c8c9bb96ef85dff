-- Payment methods, keyed by their natural value so they never duplicate.
insert into warehouse.dim_payment_method (payment_method_key, payment_method, display_name, method_type)
select
    m.ordinality::smallint as payment_method_key,
    m.payment_method,
    case m.payment_method
        when 'upi' then 'UPI'
        else upper(left(m.payment_method, 1)) || replace(substr(m.payment_method, 2), '_', ' ')
    end as display_name,
    case when m.payment_method = 'cash_on_delivery' then 'offline' else 'online' end as method_type
from unnest(:payment_methods::text[]) with ordinality as m (payment_method, ordinality)
on conflict (payment_method) do update set
    display_name = excluded.display_name,
    method_type = excluded.method_type;
