import pytest

from ecom_pipeline import db, migrations


def _tables(conn) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'production', 'warehouse', 'monitoring')"
        )
    }


def test_apply_migrations_twice_is_a_no_op(fresh_db):
    with db.connection(fresh_db, autocommit=True) as conn:
        first = migrations.apply_migrations(conn)
        tables = _tables(conn)
        second = migrations.apply_migrations(conn)
        assert first == [m.version for m in migrations.discover()]
        assert second == []
        assert _tables(conn) == tables
        assert {"monitoring.pipeline_runs", "staging.orders"} <= tables


def test_failing_migration_leaves_database_as_it_was(fresh_db, tmp_path):
    (tmp_path / "0001_good.sql").write_text("create schema extra; create table extra.t (x int);")
    (tmp_path / "0002_bad.sql").write_text("create table extra.u (x int); select 1/0;")
    with db.connection(fresh_db, autocommit=True) as conn:
        with pytest.raises(migrations.MigrationError, match=r"0002_bad\.sql failed"):
            migrations.apply_migrations(conn, tmp_path)
        assert conn.execute("select count(*) from pg_namespace where nspname = 'extra'").fetchone()[0] == 0


def test_changed_migration_is_refused(fresh_db, tmp_path):
    path = tmp_path / "0001_one.sql"
    path.write_text("create table one (x int);")
    with db.connection(fresh_db, autocommit=True) as conn:
        migrations.apply_migrations(conn, tmp_path)
        path.write_text("create table one (x int, y int);")
        with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
            migrations.apply_migrations(conn, tmp_path)


def test_badly_named_migration_is_refused(tmp_path):
    (tmp_path / "one.sql").write_text("select 1")
    with pytest.raises(migrations.MigrationError, match="must look like"):
        migrations.discover(tmp_path)


def test_role_without_create_gets_the_privilege_named(fresh_db):
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    role, dbname = "pipeline_no_create", conninfo_to_dict(fresh_db)["dbname"]
    with db.connection(fresh_db, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        conn.execute(sql.SQL("revoke create on database {} from public").format(sql.Identifier(dbname)))
    try:
        with (
            db.connection(make_conninfo(fresh_db, user=role), autocommit=True) as conn,
            pytest.raises(
                migrations.MigrationError, match=f"the role {role} may not create .*grant create on database {dbname}"
            ),
        ):
            migrations.apply_migrations(conn)
    finally:
        with db.connection(fresh_db, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
