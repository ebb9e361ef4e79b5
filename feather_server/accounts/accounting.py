"""Compression and AI credits: reserve before the work, settle after it.

Every change happens in one transaction that first locks the key's usage row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions start with BEGIN
IMMEDIATE, which locks the whole database). Two workers racing on the last credit
are therefore serialised: the second one sees the first one's spend.

A reservation is held on a lease a little longer than any request may run. The request
settles it when it ends (what it delivered stays spent, the rest comes back). A request
that never ends, its worker killed mid-batch, leaves an open reservation whose lease
runs out: the next reservation or usage report of that key gives it all back, and so
does the host's periodic sweep. So nobody pays for work that was never delivered, on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feather_server.accounts.keys import utcnow
from feather_server.accounts.models import ApiKey, Plan, Usage
from feather_server.accounts.models import Reservation as HeldReservation


class QuotaExceeded(Exception):
    """The plan's monthly compressions are used up (or too few remain for the batch)."""

    def __init__(self, plan: str, limit: int, used: int) -> None:
        super().__init__(
            f"You have reached the monthly limit of {limit} compressions of the "
            f"{plan} plan ({max(0, limit - used)} left). Upgrade your plan to continue.")
        self.plan, self.limit, self.used = plan, limit, used


class AiNotAvailable(Exception):
    """AI features on a plan that is not paid."""


class NoCredits(Exception):
    """Not enough AI credits (monthly plus top-up) for the images asked."""


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_start(created: datetime, now: datetime) -> datetime:
    """Start of the billing period holding ``now``: monthly from the key's creation.

    A key made on the 31st renews on the last day of shorter months.
    """
    months = (now.year - created.year) * 12 + now.month - created.month
    start = _add_months(created, months)
    if start > now:
        start = _add_months(created, months - 1)
    return max(start, created)


def next_period(created: datetime, start: datetime) -> datetime:
    months = (start.year - created.year) * 12 + start.month - created.month
    return _add_months(created, months + 1)


@dataclass(frozen=True)
class Reservation:
    """Credits taken for one request, so that failures can be given back exactly."""

    key_id: int
    period_start: datetime
    compressions: int = 0
    ai_monthly: int = 0
    ai_topup: int = 0
    # The row that holds them on a lease (None: nothing was taken).
    held_id: int | None = None


def _usage_row(session: Session, key: ApiKey, now: datetime) -> tuple[Usage, Plan]:
    start = period_start(key.created_at, now)
    values = {"key_id": key.id, "period_start": start, "compressions": 0, "ai_credits": 0}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(Usage).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(Usage).values(values).on_conflict_do_nothing())
    elif session.get(Usage, (key.id, start)) is None:
        session.execute(insert(Usage).values(values))
    usage = session.scalars(
        select(Usage).where(Usage.key_id == key.id, Usage.period_start == start)
        .with_for_update().execution_options(populate_existing=True)).one()
    plan = session.get(Plan, key.plan_name)
    assert plan is not None
    return usage, plan


def reserve(session: Session, key_id: int, *, compressions: int = 0, ai: int = 0,
            lease: timedelta = timedelta(minutes=2), now: datetime | None = None
            ) -> Reservation:
    """Take ``compressions`` and ``ai`` credits at once, all or nothing, held for ``lease``.

    Raises QuotaExceeded, AiNotAvailable or NoCredits and takes nothing then. Expired
    leases of the key are given back first, so they never stand in the way.
    """
    now = now or utcnow()
    key = session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)
    assert key is not None
    _return_expired(session, key, now)
    usage, plan = _usage_row(session, key, now)
    limit = plan.monthly_compressions
    if compressions and limit is not None and usage.compressions + compressions > limit:
        raise QuotaExceeded(plan.name, limit, usage.compressions)
    ai_monthly = ai_topup = 0
    if ai:
        if not plan.paid:
            raise AiNotAvailable()
        ai_monthly = min(ai, max(0, plan.monthly_ai_credits - usage.ai_credits))
        ai_topup = ai - ai_monthly
        if ai_topup > key.ai_topup_credits:
            raise NoCredits()
    usage.compressions += compressions
    usage.ai_credits += ai_monthly
    key.ai_topup_credits -= ai_topup
    held = HeldReservation(key_id=key.id, period_start=usage.period_start,
                           compressions=compressions, ai_monthly=ai_monthly, ai_topup=ai_topup,
                           created_at=now, lease_until=now + lease, state="open")
    session.add(held)
    session.flush()
    return Reservation(key.id, usage.period_start, compressions, ai_monthly, ai_topup,
                       held.id)


def _give_back(session: Session, key: ApiKey, period_start: datetime, *, compressions: int,
               ai_monthly: int, ai_topup: int, sign: int = 1) -> None:
    """Return (``sign`` 1) or take again (``sign`` -1) credits of one billing period."""
    usage = session.scalars(
        select(Usage).where(Usage.key_id == key.id, Usage.period_start == period_start)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if usage is not None:
        usage.compressions = max(0, usage.compressions - sign * compressions)
        usage.ai_credits = max(0, usage.ai_credits - sign * ai_monthly)
    key.ai_topup_credits = max(0, key.ai_topup_credits + sign * ai_topup)


def settle(session: Session, reservation: Reservation, *, compressions: int = 0,
           ai: int = 0) -> None:
    """End a reservation, giving back ``compressions`` and ``ai`` credits of it (the
    work that failed). Top-up credits come back first, since they were the last taken.

    If the lease ran out first and everything came back, what was delivered is taken
    again: a request that was slow, not dead, still pays for what it delivered.
    """
    compressions = min(compressions, reservation.compressions)
    ai = min(ai, reservation.ai_monthly + reservation.ai_topup)
    # Same lock order as reserve (key, then usage), so the two never deadlock.
    key = session.get(ApiKey, reservation.key_id, with_for_update=True,
                      populate_existing=True)
    assert key is not None
    held = None
    if reservation.held_id is not None:
        held = session.get(HeldReservation, reservation.held_id, with_for_update=True,
                           populate_existing=True)
    back_topup = min(ai, reservation.ai_topup)
    back_monthly = ai - back_topup
    if held is not None and held.state == "returned":
        _give_back(session, key, reservation.period_start,
                   compressions=reservation.compressions - compressions,
                   ai_monthly=reservation.ai_monthly - back_monthly,
                   ai_topup=reservation.ai_topup - back_topup, sign=-1)
    elif held is None or held.state == "open":
        _give_back(session, key, reservation.period_start, compressions=compressions,
                   ai_monthly=back_monthly, ai_topup=back_topup)
    if held is not None:
        held.state = "settled"
    session.flush()


def release(session: Session, reservation: Reservation, *, compressions: int = 0,
            ai: int = 0) -> None:
    """``settle``: the name the callers of an earlier version used."""
    settle(session, reservation, compressions=compressions, ai=ai)


def _return_expired(session: Session, key: ApiKey, now: datetime) -> int:
    expired = session.scalars(
        select(HeldReservation).where(HeldReservation.key_id == key.id,
                                      HeldReservation.state == "open",
                                      HeldReservation.lease_until < now)
        .with_for_update()).all()
    for held in expired:
        _give_back(session, key, held.period_start, compressions=held.compressions,
                   ai_monthly=held.ai_monthly, ai_topup=held.ai_topup)
        held.state = "returned"
    # Settled and returned rows are kept a day for the record, then dropped.
    session.execute(delete(HeldReservation).where(
        HeldReservation.key_id == key.id, HeldReservation.state != "open",
        HeldReservation.created_at < now - timedelta(days=1)))
    return len(expired)


def return_expired(session: Session, now: datetime | None = None) -> int:
    """Give back every reservation whose lease ran out (requests that died); how many."""
    now = now or utcnow()
    key_ids = session.scalars(
        select(HeldReservation.key_id).where(HeldReservation.state == "open",
                                             HeldReservation.lease_until < now)
        .distinct()).all()
    returned = 0
    for key_id in key_ids:
        key = session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)
        if key is not None:
            returned += _return_expired(session, key, now)
    session.flush()
    return returned


@dataclass(frozen=True)
class UsageReport:
    """GET /api/usage, with FluxImage's field names."""

    plan: str
    compressor_used: int
    compressor_limit: int | None
    ia_credits_used: int
    ia_credits_monthly: int
    ia_topup_credits: int
    ia_credits_remaining: int
    canCompress: bool
    canUseIA: bool
    period_start: datetime
    period_end: datetime


def usage_report(session: Session, key_id: int, now: datetime | None = None) -> UsageReport:
    now = now or utcnow()
    key = session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)
    assert key is not None
    _return_expired(session, key, now)
    usage, plan = _usage_row(session, key, now)
    remaining = max(0, plan.monthly_ai_credits - usage.ai_credits) + key.ai_topup_credits
    limit = plan.monthly_compressions
    return UsageReport(
        plan=plan.name,
        compressor_used=usage.compressions,
        compressor_limit=limit,
        ia_credits_used=usage.ai_credits,
        ia_credits_monthly=plan.monthly_ai_credits,
        ia_topup_credits=key.ai_topup_credits,
        ia_credits_remaining=remaining if plan.paid else 0,
        canCompress=limit is None or usage.compressions < limit,
        canUseIA=plan.paid and remaining > 0,
        period_start=usage.period_start,
        period_end=next_period(key.created_at, usage.period_start),
    )
