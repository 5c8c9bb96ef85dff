import pytest

from ecom_pipeline import config, db


def test_redact_hides_password_in_urls_and_text():
    url = "postgresql://alice:s3cret-Pw@db.example.org:5432/shop"
    assert "s3cret-Pw" not in db.redact(f"failed for {url}")
    assert "s3cret-Pw" not in db.redact("password s3cret-Pw rejected", url)
    assert "alice:***@" in db.redact(url)


def test_describe_never_shows_password():
    described = db.describe("postgresql://alice:s3cret@db.example.org:5433/shop?sslmode=require")
    assert described == "postgresql://alice@db.example.org:5433/shop"


def test_describe_socket_url():
    assert db.describe("postgresql://postgres:@/ecom?host=/var/run/pg") == "postgresql://postgres@/var/run/pg/ecom"


def test_bind_replaces_only_given_names():
    text = "select to_char(x, 'HH24:MI'), y::date from t where b = :batch_id and c like 'a%'"
    bound = db._bind(text, {"batch_id": "b1"})
    assert "%(batch_id)s" in bound
    assert "'HH24:MI'" in bound and "y::date" in bound and "'a%%'" in bound


def test_database_url_prefers_environment(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgresql://from-dotenv/db\n")
    monkeypatch.setattr(config, "ENV_FILE", env_file)
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env/db")
    assert db.database_url() == "postgresql://from-env/db"


def test_database_url_reads_dotenv(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgresql://from-dotenv/db\n")
    monkeypatch.setattr(config, "ENV_FILE", env_file)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert db.database_url() == "postgresql://from-dotenv/db"


def test_database_url_without_configuration_is_embedded(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "ENV_FILE", tmp_path / "missing.env")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert db.database_url(start_embedded=False) is None


def test_connect_unreachable_is_a_clear_error():
    with pytest.raises(db.DatabaseUnavailable, match=r"cannot connect to the database postgresql://bob@127\.0\.0\.1:1/x"
                       ) as info:
        db.connect("postgresql://bob:hunter2@127.0.0.1:1/x")
    assert "hunter2" not in str(info.value)
