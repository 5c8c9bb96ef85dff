-- Results of every declared quality check, per run: the history that scores and trends are built from.
create table monitoring.check_results (
    run_id         text not null,
    check_name     text not null,
    kind           text not null,
    layer          text not null,
    table_name     text not null,
    dimension      text not null,
    severity       text not null check (severity in ('error', 'warn')),
    description    text not null,
    rows_checked   bigint not null,
    rows_failing   bigint not null,
    failing_sample jsonb not null default '[]',
    observed_value numeric,                       -- row_count checks: the count, for later comparisons
    duration_s     double precision not null,
    passed         boolean not null,
    checked_at     timestamptz not null default now(),
    primary key (run_id, check_name)
);

create table monitoring.quality_scores (
    run_id      text primary key,
    overall     numeric(6, 2) not null,
    grade       text not null,
    dimensions  jsonb not null,
    scored_at   timestamptz not null default now()
);
