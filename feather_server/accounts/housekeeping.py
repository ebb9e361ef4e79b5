"""The accounts database's own sweeping: leases that ran out, answers kept past a day."""

from __future__ import annotations

import logging

from feather_server.accounts import accounting, idempotency
from feather_server.accounts.database import database_for
from feather_server.settings import Settings

log = logging.getLogger("feather.accounts")


def tidy(settings: Settings) -> tuple[int, int]:
    """Give back every reservation whose request died, and drop idempotency records
    older than a day; (reservations returned, records dropped)."""
    with database_for(settings).session() as session:
        returned = accounting.return_expired(session)
        dropped = idempotency.sweep(session)
    if returned:
        log.info("gave back %d reservation(s) whose request died", returned)
    return returned, dropped
