from __future__ import annotations

import subprocess
import sys

import pytest

from feather_server.settings import Settings, SettingsError, settings_table


def test_defaults_match_the_documents() -> None:
    settings = Settings.from_env({})
    assert settings.max_upload_mb == 20
    assert settings.max_upload_bytes == 20_000_000
    assert settings.request_timeout_ms == 30_000
    assert settings.rate_limit_per_minute == 60
    assert settings.require_api_key is False
    assert settings.port == 3000


def test_values_are_coerced_from_the_environment() -> None:
    settings = Settings.from_env({"MAX_UPLOAD_MB": "0.5", "REQUIRE_API_KEY": "on",
                                  "CORS_ORIGINS": "https://a.example, https://b.example/"})
    assert settings.max_upload_bytes == 500_000
    assert settings.require_api_key is True
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MAX_UPLOAD_MB": "lots", "REQUEST_TIMEOUT_MS": "-5",
                           "REQUIRE_API_KEY": "maybe", "PORT": "3000"})
    message = str(caught.value)
    for name in ("MAX_UPLOAD_MB", "REQUEST_TIMEOUT_MS", "REQUIRE_API_KEY"):
        assert name in message
    assert "PORT" not in message


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_a_bad_setting_stops_start_up() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MAX_PIXELS": "many", "REQUEST_TIMEOUT_MS": "x"},
        check=False,
    )
    assert done.returncode != 0
    assert "MAX_PIXELS" in done.stderr
    assert "REQUEST_TIMEOUT_MS" in done.stderr


def test_every_setting_is_documented() -> None:
    rows = settings_table()
    assert {"MAX_UPLOAD_MB", "MAX_PIXELS", "REQUEST_TIMEOUT_MS", "RATE_LIMIT_PER_MINUTE",
            "CORS_ORIGINS", "MODEL_CACHE_DIR"} <= {row[0] for row in rows}
    assert all(row[3] for row in rows)
