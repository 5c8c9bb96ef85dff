-- Reading raw staging text as a timestamp without failing on a bad value (monitoring's freshness check
-- reads the newest order dates of a batch, defects included).
create function monitoring.try_timestamptz(value text) returns timestamptz
language plpgsql stable
as $$
begin
    return value::timestamptz;
exception when others then
    return null;
end;
$$;
