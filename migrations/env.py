"""Alembic environment: runs on the engine Feather hands over (see app/accounts/database.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from feather_server.accounts.models import Base

# Any number; all Feather hosts take the same PostgreSQL advisory lock while migrating.
_MIGRATION_LOCK = 7_361_042


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"),
                                   {"id": _MIGRATION_LOCK})
            context.run_migrations()


run_migrations_online()
