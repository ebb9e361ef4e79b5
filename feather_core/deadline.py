"""A wall-clock deadline checked between steps and between encodes."""

from __future__ import annotations

import time

from feather_core.errors import ProcessingTimeout


class Deadline:
    """``check()`` raises ``ProcessingTimeout`` once ``seconds`` have passed."""

    def __init__(self, seconds: float | None) -> None:
        self.started = time.monotonic()
        self.expires = None if seconds is None else self.started + seconds

    def remaining(self) -> float | None:
        """Seconds left, or None when there is no deadline."""
        if self.expires is None:
            return None
        return max(0.0, self.expires - time.monotonic())

    def expired(self, margin: float = 0.0) -> bool:
        return self.expires is not None and time.monotonic() + margin >= self.expires

    def check(self) -> None:
        if self.expired():
            raise ProcessingTimeout("Processing took longer than the time allowed")

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)
