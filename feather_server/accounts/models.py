"""Tables of the accounts database: plans, API keys, and usage per billing period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Plan(Base):
    """A plan the operator may edit: monthly compressions (None = unlimited) and AI credits."""

    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    monthly_compressions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monthly_ai_credits: Mapped[int] = mapped_column(Integer, default=0)
    # Paid plans may use watermarks and AI features.
    paid: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKey(Base):
    """One key. Only the SHA-256 of the raw key is kept; ``prefix`` identifies it to humans."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    plan_name: Mapped[str] = mapped_column(ForeignKey("plans.name"))
    # Naive UTC throughout: SQLite has no time zones, and one convention avoids mixing.
    created_at: Mapped[datetime] = mapped_column(DateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    ai_topup_credits: Mapped[int] = mapped_column(Integer, default=0)


class Usage(Base):
    """What a key used in one billing period (a month from its creation day)."""

    __tablename__ = "usage"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(), primary_key=True)
    compressions: Mapped[int] = mapped_column(Integer, default=0)
    ai_credits: Mapped[int] = mapped_column(Integer, default=0)
