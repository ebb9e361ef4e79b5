"""A part Feather depends on is down: one exception family, one answer.

The accounts database (``DatabaseUnavailable``) and the output store (``StoreError``)
raise subclasses of ``Unavailable``. It is an ``ApiError`` with the code
``SERVICE_UNAVAILABLE``, so the errors registry answers it like any other: 503 in the
request's dialect, with ``Retry-After``, and the worker serves the next request. The
cause (host names, driver messages) goes to the log, never to the client.
"""

from __future__ import annotations

import logging

from feather_server.http.errors import ApiError

log = logging.getLogger("feather.dependencies")

#: Seconds a client is told to wait: long enough for a restarted database or a
#: failed-over bucket, short enough that a retry loop notices recovery.
RETRY_AFTER_SECONDS = 5


class Unavailable(ApiError):
    """A dependency did not answer, or answered that it cannot serve."""

    #: What the client is told is down ("the accounts database").
    part = "a service Feather depends on"

    def __init__(self, detail: str) -> None:
        super().__init__("SERVICE_UNAVAILABLE",
                         f"{self.part[0].upper()}{self.part[1:]} is unavailable; "
                         f"retry in a few seconds",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.detail = detail

    def __str__(self) -> str:
        # Log lines ("storing a.jpg failed: %s") show the cause, the client the message.
        return self.detail
