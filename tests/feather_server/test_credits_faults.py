"""Nothing wrongly charged: reservations that come back by themselves, retries that are
free, and every FluxImage-shaped request answered as FluxImage."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from feather_cli.keys import create_key, set_plan
from feather_server.accounts import accounting, idempotency
from feather_server.accounts.database import database_for
from feather_server.settings import Settings
from tests.accounts_fixtures import database_url  # noqa: F401 - fixture
from tests.ai_server import AiServer
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(64, 48), "JPEG")


def _usage(url: str, key: str) -> tuple[int, int]:
    report = requests.get(url + "/api/usage", headers={"Authorization": f"Bearer {key}"},
                          timeout=60).json()
    return report["compressor_used"], report["ia_credits_used"]


# The accounting itself, on SQLite and PostgreSQL.


def test_an_expired_lease_gives_everything_back(tmp_path: Path,
                                               database_url: str) -> None:  # noqa: F811
    settings = Settings.from_env({}, data_dir=str(tmp_path), database_url=database_url)
    info, _ = create_key(settings, "starter")
    db = database_for(settings)
    with db.session() as session:
        held = accounting.reserve(session, info.id, compressions=5, ai=5,
                                  lease=timedelta(seconds=-1))
    with db.session() as session:
        report = accounting.usage_report(session, info.id)
    assert (report.compressor_used, report.ia_credits_used) == (0, 0)
    # A request that was slow, not dead, still pays for what it delivered.
    with db.session() as session:
        accounting.settle(session, held, compressions=2, ai=5)
    with db.session() as session:
        report = accounting.usage_report(session, info.id)
    assert (report.compressor_used, report.ia_credits_used) == (3, 0)


def test_a_settled_reservation_stays_settled(tmp_path: Path,
                                             database_url: str) -> None:  # noqa: F811
    settings = Settings.from_env({}, data_dir=str(tmp_path), database_url=database_url)
    info, _ = create_key(settings, "starter")
    db = database_for(settings)
    with db.session() as session:
        held = accounting.reserve(session, info.id, compressions=4, ai=0,
                                  lease=timedelta(seconds=1))
    with db.session() as session:
        accounting.settle(session, held, compressions=1)
    time.sleep(1.2)
    with db.session() as session:
        assert accounting.return_expired(session) == 0
        assert accounting.usage_report(session, info.id).compressor_used == 3


# On a real gunicorn.


@pytest.fixture
def slow_ai() -> Iterator[AiServer]:
    server = AiServer().start()
    server.mode, server.slow_seconds = "slow", 60
    yield server
    server.stop()


def test_a_worker_killed_mid_batch_keeps_no_credits(tmp_path: Path, slow_ai: AiServer) -> None:
    data_dir = tmp_path / "var"
    settings = Settings.from_env({}, data_dir=str(data_dir))
    set_plan(settings, "starter", compressions=200, ai_credits=200)
    _, key = create_key(settings, "starter")
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0",
           "REQUEST_TIMEOUT_MS": "3000", "AI_BASE_URL": slow_ai.base_url,
           "AI_MODEL": "vision-test"}
    with GunicornServer(env, workers=2) as server:
        assert _usage(server.url, key) == (0, 0)
        answers: list[object] = []

        def batch() -> None:
            try:
                answers.append(requests.post(
                    server.url + "/api/batch", headers={"Authorization": f"Bearer {key}"},
                    files=[("file", (f"p{i}.jpg", JPEG)) for i in range(10)],
                    data={"autoAltText": "true"}, timeout=60))
            except requests.RequestException as exc:
                answers.append(exc)

        thread = threading.Thread(target=batch)
        thread.start()
        deadline = time.monotonic() + 20
        while not slow_ai.seen() and time.monotonic() < deadline:
            time.sleep(0.05)  # the batch is charged and waiting on the AI now
        assert slow_ai.seen(), "the batch never reached the AI"
        assert _usage(server.url, key) == (10, 10)  # reserved, held on its lease
        for worker in server.worker_pids():
            os.kill(worker, signal.SIGKILL)
        thread.join(60)
        assert answers
        assert isinstance(answers[0], requests.RequestException)
        # The lease is 2 × 3 s + 10 s: after it, every credit is back by itself.
        time.sleep(17)
        assert _usage(server.url, key) == (0, 0)


def test_a_retry_with_the_same_idempotency_key_is_answered_again_for_free(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings.from_env({}, data_dir=str(data_dir))
    _, key = create_key(settings, "starter")
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0"}
    with GunicornServer(env, workers=2) as server:
        def send(idem: str, quality: str = "82") -> requests.Response:
            return requests.post(server.url + "/api/batch",
                                 headers={"Authorization": f"Bearer {key}",
                                          "Idempotency-Key": idem},
                                 files=[("file", ("a.jpg", JPEG)), ("file", ("b.jpg", JPEG))],
                                 data={"quality": quality}, timeout=60)

        first = send("order-1234")
        assert first.status_code == 200, first.text
        assert _usage(server.url, key) == (2, 0)
        again = send("order-1234")
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        body, replayed = first.json(), again.json()
        assert [d["newName"] for d in replayed["data"]] == [d["newName"] for d in body["data"]]
        assert replayed["sessionId"] == body["sessionId"]
        for item in replayed["data"]:
            assert requests.get(item["downloadUrl"], timeout=30).status_code == 200
        assert _usage(server.url, key) == (2, 0)  # not charged again
        different = send("order-1234", quality="60")
        assert different.status_code == 422
        assert different.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
        assert send("order-5678").status_code == 200
        assert _usage(server.url, key) == (4, 0)


def test_a_key_still_in_use_is_409(client: FlaskClient, settings: Settings) -> None:
    with database_for(settings).session() as session:
        idempotency.begin(session, "anonymous:127.0.0.1", "busy", "x")
    answer = client.post("/api/batch", headers={"Idempotency-Key": "busy"},
                         data={"file": (io.BytesIO(JPEG), "a.jpg")})
    assert answer.status_code == 409
    assert answer.json["error"] == "IDEMPOTENCY_KEY_IN_USE"


# The dialect rule.


def test_one_file_with_a_fluximage_field_is_answered_as_fluximage(client: FlaskClient) -> None:
    answer = client.post("/api/compress", data={"file": (io.BytesIO(JPEG), "a.jpg"),
                                                "sessionId": "s1"})
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.json["data"][0]["originalName"] == "a.jpg"


def test_ai_on_one_file_is_never_skipped_silently(client: FlaskClient) -> None:
    answer = client.post("/api/compress", data={"file": (io.BytesIO(JPEG), "a.jpg"),
                                                "autoAltText": "true"})
    # Anonymous: the FluxImage 403, not an image without alt text.
    assert answer.status_code == 403
    assert answer.json == {"error": "ia_not_available",
                           "message": "AI features require a paid plan. Upgrade to Starter."}


def test_fields_of_both_dialects_are_400(client: FlaskClient) -> None:
    answer = client.post("/api/compress", data={"file": (io.BytesIO(JPEG), "a.jpg"),
                                                "outputFormat": "webp", "format": "avif"})
    assert answer.status_code == 400
    error = answer.json["error"]
    assert error["code"] == "INVALID_INPUT"
    assert "outputFormat" in error["message"]
    assert "format" in error["message"]
    assert set(error["details"]) == {"outputFormat", "format"}


def test_feather_fields_win_over_accept(client: FlaskClient) -> None:
    answer = client.post("/api/compress", headers={"Accept": "application/json"},
                         data={"file": (io.BytesIO(JPEG), "a.jpg"), "outputFormat": "png"})
    assert answer.status_code == 200
    assert answer.mimetype == "image/png"
    plain = client.post("/api/compress", headers={"Accept": "application/json"},
                        data={"file": (io.BytesIO(JPEG), "a.jpg")})
    assert plain.mimetype == "application/json"
