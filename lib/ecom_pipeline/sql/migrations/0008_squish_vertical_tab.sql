-- squish trimmed the letter "v" on PostgreSQL 15 and older: there E'\v' is a plain "v" (the escape for a
-- vertical tab only exists from PostgreSQL 16), so "vanessa@..." became "anessa@...". chr(11) is the
-- vertical tab on every version.
create or replace function production.squish(value text) returns text
language sql immutable parallel safe as $$
    select nullif(btrim(value, E' \t\r\n\f' || chr(11)), '')
$$;
