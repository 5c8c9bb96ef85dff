from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from ecom_pipeline import config, db


def test_redact_hides_password_in_urls_and_text():
    url = "postgresql://alice:s3cret-Pw@db.example.org:5432/shop"
    assert "s3cret-Pw" not in db.redact(f"failed for {url}")
    assert "s3cret-Pw" not in db.redact("password s3cret-Pw rejected", url)
    assert "alice:***@" in db.redact(url)


def test_describe_never_shows_password():
    described = db.describe("postgresql://alice:s3cret@db.example.org:5433/shop?sslmode=require")
    assert described == "postgresql://alice@db.example.org:5433/shop"


def test_describe_socket_url_is_one_psql_reads_as_the_socket():
    assert (
        db.describe("postgresql://postgres:@/ecom?host=/var/run/pg&port=5499")
        == "postgresql://postgres@/ecom?host=/var/run/pg&port=5499"
    )


@pytest.mark.parametrize(
    "url, described",
    [
        (
            "host=db.example.org port=5433 dbname=shop user=alice password=s3cret",
            "postgresql://alice@db.example.org:5433/shop",
        ),
        (r"host=/tmp/pg dbname=ecom user=postgres password='s3 cr\'et'", "postgresql://postgres@/ecom?host=/tmp/pg"),
        ("postgresql+psycopg2://alice:s3cret@db.example.org/shop", "postgresql://alice@db.example.org/shop"),
        ("postgres+psycopg://alice:s3cret@db.example.org/shop", "postgresql://alice@db.example.org/shop"),
        ("postgresql://alice:s3#cret@db.example.org/shop", "postgresql://alice@db.example.org/shop"),
    ],
)
def test_every_form_libpq_accepts_is_read_and_never_shows_the_password(url, described):
    normalised = db.normalise(url)
    assert db.describe(normalised) == described
    assert "s3" not in db.redact(f"connecting with {url} failed", normalised)


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a connection string", 'missing "="'),
        ("password=hunter2 garbage", 'missing "="'),
        ("postgresql://u:hunter2@h/db?bogus=1", "invalid URI query parameter"),
        ("postgresql://u:hunter2@h:99999/db", "invalid port '99999'"),
        ("host=h port=abc password=hunter2", "invalid port 'abc'"),
    ],
)
def test_unusable_connection_string_is_one_clear_line_without_its_text(url, message):
    with pytest.raises(db.BadConnectionString, match=message) as info:
        db.normalise(url)
    text = str(info.value)
    assert "hunter2" not in text and "garbage" not in text and "\n" not in text


# "Pw" first: a password that is a piece of the printed target ("post") is in it whatever redact does.
@given(
    password=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=2, max_size=30
    ).map(lambda text: "Pw" + text)
)
def test_no_password_survives_describe_or_redact(password):
    for url in (
        make_conninfo(host="db.example.org", dbname="shop", user="alice", password=password),
        f"postgresql://alice:{quote(password, safe='')}@db.example.org/shop",
    ):
        normalised = db.normalise(url)
        assert password not in db.describe(normalised)
        assert password not in db.redact(f"error for {url}: password {password} rejected", normalised)


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
    with pytest.raises(
        db.DatabaseUnavailable, match=r"cannot connect to the database postgresql://bob@127\.0\.0\.1:1/x"
    ) as info:
        db.connect("postgresql://bob:hunter2@127.0.0.1:1/x")
    assert "hunter2" not in str(info.value)
