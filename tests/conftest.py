"""Fixtures every test folder shares: settings, the app, its client and command line, and
one real gunicorn for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from feather_server import create_app
from feather_server.settings import Settings
from tests.server import GunicornServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """The app's command line (``flask keys ...``) on the test's settings."""
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """One real gunicorn (2 workers) with default settings, shared by the session."""
    data = tmp_path_factory.mktemp("live")
    server = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "0"}, workers=2)
    server.start(data)
    yield server
    server.stop()
