"""The accounts database: SQLite in DATA_DIR by default, PostgreSQL with DATABASE_URL.

The schema is created and upgraded by the alembic migrations in ``migrations/``, run
once per process on first use (under a lock, so several workers starting at once do
not race).

A database that is down costs a request at most ``DATABASE_TIMEOUT_MS``, then 503
SERVICE_UNAVAILABLE (``DatabaseUnavailable``): one transaction (``Database.session``)
has that long for everything it does, connecting included. PostgreSQL connections
are psycopg connections whose every wait is bounded by what is left of it (libpq
has no read timeout, and its connect timeout is at least 2 s), so a stopped, paused
or unreachable server is noticed in time; a SQLite file that cannot be opened, read
or written (a full disk) fails at once. The SQLite file is created owner-only.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from filelock import Timeout as LockTimeout
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from feather_server.datadir import DATABASE_FILE, create_private_file, private_folder
from feather_server.errors import Unavailable
from feather_server.settings import Settings

log = logging.getLogger("feather.accounts")
T = TypeVar("T")
# Migrations wait for other hosts' (PostgreSQL advisory lock) and run DDL: more time.
_MIGRATION_SECONDS = 60.0


class DatabaseUnavailable(Unavailable):
    """The accounts database cannot be reached, read or written now."""

    part = "the accounts database"


def unavailable_cause(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is down (not a bug in a query)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    # SQLite's "file is not a database" is a bare DatabaseError.
    return isinstance(exc, DatabaseError) and type(exc.orig) is sqlite3.DatabaseError


# Time left to the current transaction on this thread (None: the per-wait default).
_deadline = threading.local()


@contextmanager
def answer_within(seconds: float) -> Iterator[None]:
    """Everything the database does on this thread within the block ends in ``seconds``."""
    previous = getattr(_deadline, "at", None)
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = previous


def _seconds_left(default: float) -> float:
    at: float | None = getattr(_deadline, "at", None)
    return default if at is None else max(0.0, at - time.monotonic())


def _within(gen: Generator[Any, Any, T], seconds: float) -> Generator[Any, Any, T]:
    """A psycopg wait generator that gives up after ``seconds``.

    psycopg's wait loops send "nothing ready" every 0.1 s; that is when the clock is read.
    """
    import psycopg

    deadline = time.monotonic() + seconds
    try:
        request = next(gen)
        while True:
            ready = yield request
            if not ready and time.monotonic() >= deadline:
                raise psycopg.errors.ConnectionTimeout(
                    f"no answer from the database server within {seconds:g} s")
            request = gen.send(ready)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


def _bounded_connection_class(seconds: float) -> type[Any]:
    """A psycopg connection whose connect and every wait end within the time left."""
    import psycopg

    wait_timeout = getattr(psycopg.errors, "_WaitTimeout", psycopg.errors.OperationalError)

    class BoundedConnection(psycopg.Connection[Any]):
        @classmethod
        def _connect_gen(cls, conninfo: str = "") -> Any:
            return _within(super()._connect_gen(conninfo), _seconds_left(seconds))

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = _seconds_left(seconds) if timeout is None else timeout
            try:
                return super().wait(gen, interval, limit)
            except wait_timeout as exc:
                # The protocol is mid-exchange: the connection cannot be reused. Closed,
                # SQLAlchemy sees a disconnect and drops it from the pool.
                self.close()
                raise psycopg.OperationalError(
                    f"no answer from the database server within {limit:g} s; "
                    "the connection is closed") from exc

    return BoundedConnection

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
    folder = private_folder(Path(settings.data_dir).resolve())
    create_private_file(folder / DATABASE_FILE)
    return f"sqlite:///{folder / DATABASE_FILE}"


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


def _server_engine(url: str, timeout: float) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                           pool_timeout=timeout)
    if engine.dialect.driver == "psycopg":
        connection_class = _bounded_connection_class(timeout)

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return connection_class.connect(*cargs, **cparams)

    return engine


class Database:
    """An engine plus a session factory, migrated to the newest schema."""

    def __init__(self, url: str, timeout: float = 1.5) -> None:
        self.url = url
        self.timeout = timeout
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
        else:
            self.engine = _server_engine(url, timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Raises DatabaseUnavailable when the database is down or does not answer within
        the timeout; errors of the work itself pass through unchanged.
        """
        try:
            with answer_within(self.timeout), self.sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            if unavailable_cause(exc):
                log.warning("accounts database unavailable: %s", exc.__class__.__name__,
                            exc_info=exc)
                raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise

    def ping(self) -> None:
        """One round trip (readiness); raises DatabaseUnavailable."""
        with self.session() as session:
            session.execute(text("SELECT 1"))

    def upgrade(self, lock_dir: Path) -> None:
        """Run the migrations up to head; DatabaseUnavailable when the database is down."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        self.ping()  # a database that is down fails here, in the normal time
        try:
            private_folder(lock_dir)
            with (FileLock(str(lock_dir / ".migrate.lock"), timeout=120),
                  answer_within(max(_MIGRATION_SECONDS, self.timeout))):
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            if unavailable_cause(exc):
                raise DatabaseUnavailable(f"migrating: {type(exc).__name__}: {exc}") from exc
            raise
        except (OSError, LockTimeout) as exc:
            raise DatabaseUnavailable(f"migration lock in {lock_dir}: {exc}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def database_for(settings: Settings) -> Database:
    """The process's migrated database for these settings (created on first use)."""
    try:
        url = database_url(settings)
    except OSError as exc:  # DATA_DIR cannot be created (read-only, full)
        raise DatabaseUnavailable(f"{settings.data_dir}: {exc}") from exc
    with _lock:
        db = _databases.get(url)
        if db is None:
            db = Database(url, settings.database_timeout_ms / 1000)
            try:
                db.upgrade(Path(settings.data_dir))
            except BaseException:
                db.dispose()  # not cached: the next request tries again
                raise
            _databases[url] = db
        return db


def forget(settings: Settings) -> None:
    """Drop the cached engine (tests that recreate a database call this)."""
    with _lock:
        db = _databases.pop(database_url(settings), None)
    if db is not None:
        db.dispose()
