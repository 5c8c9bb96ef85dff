-- The one order in which the clean stage decides what happens to a staged row, for every table's
-- clean/<table>.sql: an exact copy collapses onto its first line; a row that failed a rule is quarantined;
-- of the valid rows of one key, only the newest counts (the others are stale); then it is new to
-- production (insert), newer than what production has (update), the same (unchanged), or older (stale).
-- A plain SQL expression, so the planner inlines it: each argument is evaluated only where the CASE reaches.
create function production.clean_action(
    copy_number bigint,
    reasons text [],
    newest_first bigint,
    in_production boolean,
    is_newer boolean,
    is_same boolean
) returns text
language sql immutable parallel safe
as $$
    select case
        when copy_number > 1 then 'duplicate'
        when reasons <> '{}' then 'quarantined'
        when newest_first > 1 then 'stale'
        when not in_production then 'insert'
        when is_newer then 'update'
        when is_same then 'unchanged'
        else 'stale'
    end
$$;

comment on function production.clean_action(bigint, text [], bigint, boolean, boolean, boolean) is
'What the clean stage does with a staged row: duplicate, quarantined, stale, insert, update or unchanged.';
