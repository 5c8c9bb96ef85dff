-- Late-arriving parents: a row quarantined only because its parent was missing is retried when a later
-- batch brings the parent. Its source batch's clean_log counts it as released; production.released keeps
-- the record of what was held, why, and which batch let it in.
alter table production.clean_log
    add column released bigint not null default 0 check (released >= 0),
    drop constraint clean_log_check,
    add constraint clean_log_rows_check
        check (staged = inserted + updated + unchanged + stale + duplicates + quarantined + released);

create table production.released (
    batch_id           text not null,
    source_table       text not null,
    source_line        bigint not null,
    natural_key        text,
    reasons            text[] not null,
    quarantined_at     timestamptz not null,
    released_batch_id  text not null,
    released_at        timestamptz not null default now(),
    run_id             text not null,
    primary key (batch_id, source_table, source_line)
);

create index released_batch_idx on production.released (released_batch_id);
