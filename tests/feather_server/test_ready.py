"""GET /api/ready: the database, the store and Redis, each with its state and latency.

(The database down, paused or full, and a hanging bucket, are in test_database_faults.py
and test_storage_s3_faults.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from feather_server import create_app
from feather_server.settings import Settings
from tests.server import ROOT, GunicornServer, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_ready_reports_each_part(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0)
    response = create_app(settings).test_client().get("/api/ready")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["ready"] is True
    assert "error" not in body
    assert set(body["checks"]) == {"database", "store"}  # no Redis configured
    database, store = body["checks"]["database"], body["checks"]["store"]
    assert database["state"] == "up"
    assert database["kind"] == "sqlite"
    assert database["required"]
    assert store["state"] == "up"
    assert store["kind"] == "local"
    assert store["required"]
    assert all(isinstance(c["latencyMs"], float | int) for c in body["checks"].values())


def test_redis_is_checked_but_not_required(tmp_path: Path) -> None:
    for url, state in ((REDIS_URL, "up"), (f"redis://127.0.0.1:{free_port()}/0", "down")):
        settings = Settings.from_env({}, data_dir=str(tmp_path / "var"), redis_url=url)
        response = create_app(settings).test_client().get("/api/ready")
        redis = response.get_json()["checks"]["redis"]
        assert redis["state"] == state
        assert redis["required"] is False
        # The limiter fails open without Redis: the host still serves.
        assert response.status_code == 200


def test_a_store_that_cannot_write_is_not_ready(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "outputs").write_text("a file where the folder should be")
    settings = Settings.from_env({}, data_dir=str(data_dir), rate_limit_per_minute=0)
    response = create_app(settings).test_client().get("/api/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["ready"] is False
    assert body["checks"]["store"]["state"] == "down"
    assert body["checks"]["database"]["state"] == "up"
    assert body["error"] == {"code": "SERVICE_UNAVAILABLE", "message": "Not ready: store down"}
    # The cause is logged, not shown: the report names only its kind.
    assert str(data_dir) not in response.get_data(as_text=True)


def run_wait(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feather_server.api.ready", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_units_readiness_wait(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "feather.service").read_text()
    assert "ExecStartPost=-/opt/feather/.venv/bin/python -m feather_server.api.ready" in unit
    env = {"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0"}
    with GunicornServer(env, workers=1) as server:
        done = run_wait("--url", server.url + "/api/ready", "--wait", "10")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("feather ready: ")
        assert '"ready":true' in done.stdout
    started = time.monotonic()
    done = run_wait("--url", f"http://127.0.0.1:{free_port()}/api/ready", "--wait", "1")
    assert done.returncode == 1
    assert "NOT ready" in done.stderr
    assert time.monotonic() - started < 15


def test_health_stays_the_liveness_probe(tmp_path: Path) -> None:
    # The store is broken, so the host is not ready; it is alive all the same.
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "outputs").write_text("not a folder")
    client = create_app(Settings.from_env({}, data_dir=str(data_dir))).test_client()
    assert client.get("/api/ready").status_code == 503
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.get_json()["ok"] is True
