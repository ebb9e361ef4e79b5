"""What the upload form's browser tests share beyond tests/feather_server/test_web_form.py:
a gunicorn with the default rate limits, photos on disk, a record of every answer the page
got, and the README's screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response

from tests.feather_server.test_web_form import TIMEOUT_MS, Visit
from tests.server import GunicornServer

# Blank means the setting's default (Settings.from_env skips blank variables), whatever
# the environment the tests run in says.
DEFAULT_LIMITS = {"RATE_LIMIT_PER_MINUTE": "", "RATE_LIMIT_PREVIEWS_PER_MINUTE": ""}


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """A real gunicorn (2 workers) with every default, the rate limits included."""
    data = tmp_path_factory.mktemp("form-default")
    server = GunicornServer({"DATA_DIR": str(data), **DEFAULT_LIMITS}, workers=2)
    server.start(data)
    yield server
    server.stop()


class Answers:
    """Every answer the page got from its server: (method, path with query, status)."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.seen: list[tuple[str, str, int]] = []
        page.on("response", self._record)

    def _record(self, response: Response) -> None:
        if response.url.startswith(self.origin):
            self.seen.append((response.request.method, response.url[len(self.origin):],
                              response.status))

    def statuses(self, path: str) -> list[int]:
        return [status for _, p, status in self.seen if p.split("?")[0] == path]


def visit_of(browser: Browser, server: GunicornServer, **context: object) -> Visit:
    options: dict[str, object] = {"viewport": {"width": 1280, "height": 900}, **context}
    return Visit(browser, server.url, **options)


def screenshot(page: Page, name: str, **options: object) -> None:
    """Save a README screenshot as docs/<name> when FEATHER_SCREENSHOTS names the folder
    (`FEATHER_SCREENSHOTS=docs .venv/bin/pytest tests/feather_server/test_web_form*.py`);
    a plain test run takes none."""
    folder = os.environ.get("FEATHER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        if name.endswith(".jpg"):  # photos fill the screen: a JPEG is a fraction of a PNG
            options = {"type": "jpeg", "quality": 85, **options}
        page.screenshot(path=str(Path(folder) / name), timeout=TIMEOUT_MS, **options)
