"""``Idempotency-Key`` on a view: the first answer, given again to a retry.

The view hands over three functions: one that fingerprints what the request asks, one
that does the work (charging included) and returns a JSON record of what it delivered,
and one that renders a record as the answer. With no key, the work is done and
rendered. With a key, the first request's record is kept (``accounts.idempotency``) and
every retry with the same key and the same request is rendered from it: fresh download
links, nothing charged again. A request that fails is not kept, so its retry runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, request

from feather_server.accounts import Caller, idempotency
from feather_server.accounts.database import database_for
from feather_server.errors import Unavailable
from feather_server.settings import current_settings

log = logging.getLogger("feather.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def owner_of(caller: Caller) -> str:
    """Whose keys these are: the API key's holder, or one anonymous client by its IP."""
    return caller.owner if not caller.anonymous else f"anonymous:{request.remote_addr}"


def once_per_key(caller: Caller, fingerprint: Callable[[], str],
                 work: Callable[[], dict[str, Any]],
                 render: Callable[[dict[str, Any]], Response]) -> Response:
    """``render(work())``, or with an ``Idempotency-Key`` the first answer again."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return render(work())
    key = idempotency.check_key(raw)
    owner = owner_of(caller)
    database = database_for(current_settings())
    with database.session() as session:
        replay = idempotency.begin(session, owner, key, fingerprint())
    if replay is not None:
        response = render(replay.answer)
        response.headers[REPLAYED] = "true"
        return response
    try:
        record = work()
    except BaseException:
        # The key is let go, so the client's retry runs; with the database down, the
        # claim ages out instead (``idempotency.ABANDONED_AFTER``).
        with contextlib.suppress(Unavailable), database.session() as session:
            idempotency.abandon(session, owner, key)
        raise
    try:
        with database.session() as session:
            idempotency.finish(session, owner, key, 200, record)
    except Unavailable as exc:  # the work is done and charged: answer it all the same
        log.warning("recording the answer of Idempotency-Key %r failed: %s", key, exc)
    return render(record)
