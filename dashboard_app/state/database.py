"""One SQL database for Pulseboard's state: SQLite in the data directory, or PostgreSQL for replicas.

SQLAlchemy Core speaks to both; Alembic keeps the schema (``migrations/``), upgraded at every start, so a
newer Pulseboard on an older database brings it forward and replicas agree on one schema.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).parent / "migrations"
STATE_FILE = "state.sqlite"  # the default database, in the data directory
FRESH_FOR = 1.0  # seconds a replica trusts what it read of the state others may change (lists, alerts)
metadata = MetaData()
dashboards = Table(
    "dashboards",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),  # the dashboard's YAML, as its file has it
)
dashboard_versions = Table(
    "dashboard_versions",
    metadata,
    Column("dashboard_id", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    Column("saved", Float, nullable=False),
    Column("by", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("panels", Integer, nullable=False),
    Column("action", String(200), nullable=False),
    PrimaryKeyConstraint("dashboard_id", "version"),
)
users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("access", Text, nullable=False),  # a JSON list of access levels
    Column("password_hash", Text, nullable=False),
    Column("generation", Integer, nullable=False),  # bumped on logout and password change, on any replica
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False),  # a JSON list
    Column("digest", String(64), nullable=False, unique=True),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=True),
    Column("revoked", Boolean, nullable=False),
    Column("last_used", Float, nullable=True),
    Column("created_by", String(200), nullable=False),
)
silences = Table(
    "silences",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule_id", String(200), nullable=True),
    Column("labels", Text, nullable=False),  # a JSON object
    Column("until", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("rule", Text, nullable=False),  # the rule as the API gives it, JSON
)
alert_state = Table(
    "alert_state",
    metadata,
    Column("rule_id", String(200), primary_key=True),
    Column("alerts", Text, nullable=False),  # JSON: [[series labels, alert], ...]
    Column("seen", Text, nullable=False),  # JSON: [[series labels, last evaluation that found it], ...]
    Column("error", Text, nullable=True),
    Column("evaluated", Float, nullable=False),
)
alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert", Text, nullable=False),  # a resolved alert, JSON
)
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),  # the replica that holds it
    Column("expires", Float, nullable=False),
    Column("changes", Integer, nullable=False),  # alert changes so far: followers see when to redraw
)
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("payload", Text, nullable=False),  # JSON, as the target gets it
    Column("created", Float, nullable=False),
    Column("done", Float, nullable=True),  # delivered or given up; None: still to deliver
    Index("notifications_open", "done"),
)
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("entry", Text, nullable=False),  # JSON: who, action, target, from, status, detail
)
running_totals = Table(
    "running_totals",
    metadata,
    Column("series", String(64), primary_key=True),  # SHA-256 of the series' name and labels
    Column("total", Float, nullable=False),  # what the server was last sent for it
)
metric_definitions = Table(
    "metric_definitions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", Text, nullable=False),  # the registration, JSON, as the API answers it
)
state_marks = Table(
    "state_marks",
    metadata,
    Column("name", String(100), primary_key=True),  # e.g. "imported dashboards files"
    Column("value", Text, nullable=False),
)


class DatabaseError(ValueError):
    """A database URL or database that cannot be used; the message says which and why."""


def database_url(url: str | None, data_dir: Path) -> str:
    """The URL in force: the setting, else SQLite in the data directory."""
    if not url:
        return f"sqlite:///{Path(data_dir).resolve() / STATE_FILE}"
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"database.url: not a database URL ({exc})") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError("database.url: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def open_database(url: str) -> Engine:
    """Connect, and bring the schema up to date."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not os.path.exists(path):
            # It holds password hashes and key digests: readable by its owner only, from the start.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the one writer
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    migrate(engine)
    return engine


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (several replicas starting at once take turns)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7420001)")  # one migrator at a time
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def memory_database() -> Engine:
    """A private in-memory state database (a Pulseboard run without a data directory, tests)."""
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    migrate(engine)
    return engine


def import_once(db: Connection, mark: str, source: Path) -> bool:
    """Within a transaction: True the first time ``mark`` is asked for (then import ``source``), False
    after that, on this replica or any other: the files of earlier versions are brought in once."""
    if db.execute(select(state_marks.c.value).where(state_marks.c.name == mark)).scalar():
        return False
    db.execute(insert(state_marks).values(name=mark, value=str(source)))
    return True
