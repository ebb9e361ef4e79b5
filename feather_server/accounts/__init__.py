"""Accounts: API keys, plans, quotas and credits, in a SQL database.

One credit is reserved before the work and given back when the work fails, so a
failed image is never charged and two workers never both spend the last credit.
Views declare what they charge with ``feather_server.http.policy``.
"""

from __future__ import annotations

from feather_server.accounts.auth import Caller, authenticate, charge, refund

__all__ = ["Caller", "authenticate", "charge", "refund"]
