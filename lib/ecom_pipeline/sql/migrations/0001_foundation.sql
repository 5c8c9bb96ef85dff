-- Layers of the pipeline and the record of every run and stage.
create schema if not exists staging;
create schema if not exists production;
create schema if not exists warehouse;
create schema if not exists monitoring;

create table monitoring.pipeline_runs (
    run_id        text primary key,
    status        text not null check (status in ('running', 'success', 'failed')),
    started_at    timestamptz not null,
    finished_at   timestamptz,
    duration_s    double precision,
    stages        text[] not null,
    params        jsonb not null,
    params_file   text not null,
    code_version  text not null,
    error         text
);

create table monitoring.stage_runs (
    run_id        text not null references monitoring.pipeline_runs (run_id),
    stage         text not null,
    attempt       integer not null,
    status        text not null check (status in ('running', 'success', 'failed')),
    started_at    timestamptz not null,
    finished_at   timestamptz,
    duration_s    double precision,
    row_counts    jsonb not null default '{}'::jsonb,
    notebook      text not null,
    error         text,
    primary key (run_id, stage, attempt)
);

create index stage_runs_started_at_idx on monitoring.stage_runs (started_at);
