-- The server and this database: version, connections, size.
select
    current_setting('server_version') as server_version,
    current_database() as database,
    (select count(*) from pg_stat_activity where datname = current_database()) as connections,
    (select count(*) from pg_stat_activity where datname = current_database() and state = 'active')
        as active_connections,
    pg_database_size(current_database()) as size_bytes
