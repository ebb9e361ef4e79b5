"""Who is calling: an API key holder or an anonymous user, and what they may spend.

Wrong, unknown and revoked keys all get the same 401, so a caller learns nothing
about which keys exist. Nothing here reads the request: the HTTP layer hands over
the bearer token (``feather_server.http.policy``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from feather_server.accounts import accounting, keys
from feather_server.accounts.database import database_for
from feather_server.accounts.models import Plan
from feather_server.errors import ApiError, Unavailable
from feather_server.settings import Settings

log = logging.getLogger("feather.accounts")

AI_NOT_AVAILABLE_MESSAGE = "AI features require a paid plan. Upgrade to Starter."
NO_CREDITS_MESSAGE = ("You have used all your AI credits this month. "
                      "Purchase a top-up to continue.")


@dataclass(frozen=True)
class Caller:
    """The authenticated key (with its plan) or an anonymous caller."""

    key_id: int | None = None
    plan: str | None = None
    paid: bool = False

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    @property
    def owner(self) -> str:
        """Namespace of stored outputs: sessions of different keys never mix."""
        return "anonymous" if self.key_id is None else f"key:{self.key_id}"

    @property
    def may_watermark(self) -> bool:
        # Self-hosted anonymous use may watermark; a key needs a paid plan (else ignored).
        return self.anonymous or self.paid


def unauthorized() -> ApiError:
    return ApiError("UNAUTHORIZED", "A valid API key is required", flux_error="Unauthorized",
                    headers={"WWW-Authenticate": 'Bearer realm="feather"'})


def authenticate(token: str | None, settings: Settings) -> Caller:
    """The caller holding ``token``; 401 for a bad key, or for none in hosted mode."""
    if token is None:
        if settings.require_api_key:
            raise unauthorized()
        return Caller()
    with database_for(settings).session() as session:
        key = keys.lookup(session, token)
        if key is None:
            raise unauthorized()
        plan = session.get(Plan, key.plan_name)
        return Caller(key_id=key.id, plan=key.plan_name, paid=bool(plan and plan.paid))


def ai_not_available() -> ApiError:
    return ApiError("AI_NOT_AVAILABLE", AI_NOT_AVAILABLE_MESSAGE, flux_error="ia_not_available")


# How long a reservation is held before it comes back by itself. A live request ends by
# its deadline (its jobs are killed then, the AI and the store are bounded by it), so
# twice the deadline and some seconds is held only by a request whose worker died.
LEASE_MARGIN_SECONDS = 10


def lease_for(settings: Settings) -> timedelta:
    return timedelta(seconds=2 * settings.request_timeout + LEASE_MARGIN_SECONDS)


def charge(caller: Caller, settings: Settings, *, compressions: int = 0, ai: int = 0
           ) -> accounting.Reservation | None:
    """Reserve credits for a request; 403 in either dialect when they are not there.

    Anonymous callers have no quota (the rate limit alone applies) but no AI either.
    The reservation must be settled with ``refund`` when the request ends.
    """
    if caller.anonymous:
        if ai:
            raise ai_not_available()
        return None
    assert caller.key_id is not None
    try:
        with database_for(settings).session() as session:
            return accounting.reserve(session, caller.key_id, compressions=compressions, ai=ai,
                                      lease=lease_for(settings))
    except accounting.QuotaExceeded as exc:
        raise ApiError("QUOTA_EXCEEDED", str(exc), flux_error=str(exc)) from exc
    except accounting.AiNotAvailable as exc:
        raise ai_not_available() from exc
    except accounting.NoCredits as exc:
        raise ApiError("NO_CREDITS", NO_CREDITS_MESSAGE, flux_error="no_credits") from exc


def refund(reservation: accounting.Reservation | None, settings: Settings, *,
           compressions: int = 0, ai: int = 0) -> None:
    """Settle a reservation as its request ends, giving back the credits of work that
    failed. Never raises: with the database down, the reservation's lease runs out and
    every credit of it comes back, rather than the caller losing the work it got."""
    if reservation is None:
        return
    try:
        with database_for(settings).session() as session:
            accounting.settle(session, reservation, compressions=compressions, ai=ai)
    except Unavailable as exc:
        log.warning("settling reservation %s failed (%s); its lease will return it",
                    reservation.held_id, exc)
