"""API keys: ``flx_live_`` + 40 hex characters, shown once, stored as a SHA-256 hash.

A plain hash is enough (no slow KDF): the keys are 160 random bits, not passwords,
so there is nothing to guess, and lookups stay one indexed query.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feather_server.accounts.models import ApiKey, Plan

KEY_PREFIX = "flx_live_"
KEY_PATTERN = re.compile(r"^flx_live_[0-9a-f]{40}$")


class AccountsError(Exception):
    """A command-line request that cannot be done (unknown key or plan, bad value)."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_hex(20)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def display_prefix(raw: str) -> str:
    return raw[: len(KEY_PREFIX) + 6]


@dataclass(frozen=True)
class KeyInfo:
    """What the command line shows about a key (never the key itself)."""

    id: int
    prefix: str
    name: str
    plan: str
    created_at: datetime
    revoked_at: datetime | None
    ai_topup_credits: int

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        return cls(key.id, key.prefix, key.name, key.plan_name, key.created_at,
                   key.revoked_at, key.ai_topup_credits)


def find_key(session: Session, ref: str | int) -> ApiKey:
    """A key by id or by its shown prefix (``flx_live_ab12cd``)."""
    text = str(ref).strip()
    if text.isdigit():
        key = session.get(ApiKey, int(text), with_for_update=True)
    else:
        matches = session.scalars(select(ApiKey).where(ApiKey.prefix == text)
                                  .with_for_update()).all()
        if len(matches) > 1:
            raise AccountsError(f"{text} matches several keys: use the id")
        key = matches[0] if matches else None
    if key is None:
        raise AccountsError(f"No key {text}")
    return key


def plan_named(session: Session, name: str) -> Plan:
    plan = session.get(Plan, name)
    if plan is None:
        names = ", ".join(session.scalars(select(Plan.name)).all())
        raise AccountsError(f"No plan {name!r} (plans: {names})")
    return plan


def create(session: Session, plan: str, name: str = "",
           now: datetime | None = None) -> tuple[KeyInfo, str]:
    """A new key on ``plan``; returns its record and the raw key (shown once)."""
    plan_named(session, plan)
    raw = new_raw_key()
    key = ApiKey(key_hash=hash_key(raw), prefix=display_prefix(raw), name=name,
                 plan_name=plan, created_at=now or utcnow(), ai_topup_credits=0)
    session.add(key)
    session.flush()
    return KeyInfo.of(key), raw


def roll(session: Session, ref: str | int) -> tuple[KeyInfo, str]:
    """Give the key a new secret; the old one stops working at once. Usage is kept."""
    key = find_key(session, ref)
    if key.revoked_at is not None:
        raise AccountsError(f"Key {key.id} is revoked")
    raw = new_raw_key()
    key.key_hash = hash_key(raw)
    key.prefix = display_prefix(raw)
    session.flush()
    return KeyInfo.of(key), raw


def revoke(session: Session, ref: str | int) -> KeyInfo:
    key = find_key(session, ref)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    session.flush()
    return KeyInfo.of(key)


def topup(session: Session, ref: str | int, credits: int) -> KeyInfo:
    """Add AI credits that never expire (used after the monthly ones)."""
    if credits <= 0:
        raise AccountsError("Top-up credits must be a positive number")
    key = find_key(session, ref)
    key.ai_topup_credits += credits
    session.flush()
    return KeyInfo.of(key)


def set_plan(session: Session, ref: str | int, plan: str) -> KeyInfo:
    key = find_key(session, ref)
    key.plan_name = plan_named(session, plan).name
    session.flush()
    return KeyInfo.of(key)


def list_keys(session: Session) -> list[KeyInfo]:
    return [KeyInfo.of(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def lookup(session: Session, raw: str) -> ApiKey | None:
    """The live key whose secret is ``raw``, or None (wrong, unknown and revoked alike)."""
    if not KEY_PATTERN.match(raw):
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(raw))).first()
    if key is None or key.revoked_at is not None:
        return None
    return key
