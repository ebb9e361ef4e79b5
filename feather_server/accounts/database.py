"""The accounts database: SQLite in DATA_DIR by default, PostgreSQL with DATABASE_URL.

The schema is created and upgraded by the alembic migrations in ``migrations/``, run
once per process on first use (under a lock, so several workers starting at once do
not race).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from feather_server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
MIGRATIONS = ROOT / "migrations"


def database_url(settings: Settings) -> str:
    if settings.database_url:
        url = settings.database_url
        # Plain postgres:// URLs (as hosting providers print them) mean psycopg 3 here.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    folder = Path(settings.data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'feather.db'}"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions into our own hands (see _begin) and wait for locks.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: two workers reading the same
        # credit count and both spending it is then impossible, and no transaction
        # ever has to upgrade a read lock (SQLite's deadlock case).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """An engine plus a session factory, migrated to the newest schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self, lock_dir: Path) -> None:
        """Run the migrations up to head."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / ".migrate.lock"), timeout=120):
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def database_for(settings: Settings) -> Database:
    """The process's migrated database for these settings (created on first use)."""
    url = database_url(settings)
    with _lock:
        db = _databases.get(url)
        if db is None:
            db = Database(url)
            db.upgrade(Path(settings.data_dir))
            _databases[url] = db
        return db


def forget(settings: Settings) -> None:
    """Drop the cached engine (tests that recreate a database call this)."""
    with _lock:
        db = _databases.pop(database_url(settings), None)
    if db is not None:
        db.dispose()
