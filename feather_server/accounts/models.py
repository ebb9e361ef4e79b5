"""Tables of the accounts database: plans, API keys, and usage per billing period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
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


class Reservation(Base):
    """Credits taken for one request, held on a lease until the request settles them.

    A request that ends settles its reservation (what was delivered stays spent, the
    rest comes back). One whose worker died never does: once ``lease_until`` passes, the
    whole reservation comes back by itself (``accounting.return_expired``).
    """

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        index=True)
    period_start: Mapped[datetime] = mapped_column(DateTime())
    compressions: Mapped[int] = mapped_column(Integer, default=0)
    ai_monthly: Mapped[int] = mapped_column(Integer, default=0)
    ai_topup: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    lease_until: Mapped[datetime] = mapped_column(DateTime())
    # open: held by a request; settled: the request ended; returned: its lease ran out.
    state: Mapped[str] = mapped_column(String(16), default="open")


class IdempotentRequest(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, for 24 hours."""

    __tablename__ = "idempotent_requests"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # pending while the first request runs; done once its answer is recorded.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    expires_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
