"""Requests sent with an ``Idempotency-Key``: the first answer, replayed for 24 hours.

Stripe's convention. The first request with a key runs and its answer is recorded; a
retry with the same key and the same body gets that answer again and is not charged
again; the same key with a different body is refused (422), and while the first request
still runs a retry is told to wait (409). A first request that fails with a server
error or dies leaves nothing recorded, so its retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feather_server.accounts.keys import utcnow
from feather_server.accounts.models import IdempotentRequest
from feather_server.errors import ApiError

KEPT_FOR = timedelta(hours=24)
# A first request that has not answered in this long is dead (its worker was killed):
# a retry may run in its place.
ABANDONED_AFTER = timedelta(minutes=5)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Replay:
    """The recorded answer of the first request with a key."""

    status: int
    answer: dict[str, Any]


def check_key(raw: str) -> str:
    """The key as sent, or 400 when it is not 1-255 printable ASCII characters."""
    key = raw.strip()
    if not KEY_PATTERN.match(key):
        raise ApiError("INVALID_INPUT", "Idempotency-Key must be 1-255 printable ASCII "
                       "characters", {"Idempotency-Key": "must be 1-255 printable ASCII "
                                                         "characters"})
    return key


def fingerprint(path: str, fields: Iterable[tuple[str, str]],
                files: Iterable[tuple[str, str, str]]) -> str:
    """A digest of what a request asks: its path, its fields, each file's name and digest."""
    digest = hashlib.sha256()
    for part in (path, json.dumps(sorted(fields)), json.dumps(list(files))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def begin(session: Session, owner: str, key: str, print_: str,
          now: datetime | None = None) -> Replay | None:
    """Claim ``key`` for a first request (None), or the answer to replay.

    Raises 422 when the key was used with a different body, 409 while the request that
    holds it still runs.
    """
    now = now or utcnow()
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.owner == owner,
                                                    IdempotentRequest.expires_at < now))
    found = session.get(IdempotentRequest, (owner, key), with_for_update=True,
                        populate_existing=True)
    if found is not None:
        running = found.state != "done" and now - found.created_at < ABANDONED_AFTER
        if running:
            raise ApiError("IDEMPOTENCY_KEY_IN_USE",
                           "A request with this Idempotency-Key is still running; retry "
                           "when it has answered", headers={"Retry-After": "5"})
        if found.fingerprint != print_:
            raise ApiError("IDEMPOTENCY_KEY_REUSED",
                           "This Idempotency-Key was used with a different request; "
                           "use a new key for a new request")
        if found.state == "done" and found.status is not None and found.answer is not None:
            return Replay(found.status, json.loads(found.answer))
        # The first request died before it answered: this one runs in its place.
        found.created_at, found.expires_at = now, now + KEPT_FOR
        session.flush()
        return None
    session.add(IdempotentRequest(owner=owner, idempotency_key=key, fingerprint=print_,
                                  state="pending", created_at=now, expires_at=now + KEPT_FOR))
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent first request claimed it meanwhile
        raise ApiError("IDEMPOTENCY_KEY_IN_USE",
                       "A request with this Idempotency-Key is still running; retry when "
                       "it has answered", headers={"Retry-After": "5"}) from exc
    return None


def finish(session: Session, owner: str, key: str, status: int, answer: dict[str, Any]) -> None:
    """Record the answer of the request that holds ``key``."""
    found = session.get(IdempotentRequest, (owner, key), with_for_update=True)
    if found is not None:
        found.state, found.status, found.answer = "done", status, json.dumps(answer)


def abandon(session: Session, owner: str, key: str) -> None:
    """Let go of ``key`` after a server error: a retry runs afresh."""
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.owner == owner,
                                                    IdempotentRequest.idempotency_key == key,
                                                    IdempotentRequest.state == "pending"))


def sweep(session: Session, now: datetime | None = None) -> int:
    """Drop every recorded answer older than 24 hours; how many."""
    done = session.execute(delete(IdempotentRequest).where(
        IdempotentRequest.expires_at < (now or utcnow())))
    return int(getattr(done, "rowcount", 0) or 0)
