"""Previews (mode=preview) spend a budget of their own, under a real gunicorn: a page's
live previews never use up the budget of real work, and both budgets hold."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.images import encode, photo
from tests.server import GunicornServer

WORK, PREVIEWS = 3, 4
JPEG = encode(photo(64, 48), "JPEG")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("previews")
    with GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": str(WORK),
                         "RATE_LIMIT_PREVIEWS_PER_MINUTE": str(PREVIEWS),
                         "TRUSTED_PROXIES": "1"}, workers=2) as running:
        yield running


def post(server: GunicornServer, client: str, path: str = "/api/compress",
         files: int = 1, **fields: str) -> requests.Response:
    parts = [("file", (f"p{i}.jpg", JPEG, "image/jpeg")) for i in range(files)]
    return requests.post(server.url + path, files=parts, data=fields, timeout=120,
                         headers={"X-Forwarded-For": client})


def assert_limited(response: requests.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_previews_have_their_own_budget(server: GunicornServer) -> None:
    client = "192.0.2.10"
    for left in range(PREVIEWS - 1, -1, -1):
        answer = post(server, client, mode="preview", outputFormat="webp")
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-RateLimit-Limit"] == str(PREVIEWS)
        assert answer.headers["X-RateLimit-Remaining"] == str(left)
        assert time.time() - 5 < int(answer.headers["X-RateLimit-Reset"]) <= time.time() + 65
    limited = post(server, client, mode="preview")
    assert_limited(limited, PREVIEWS)
    assert "Preview limit exceeded" in limited.json()["error"]["message"]

    # The previews spent none of the budget of real work: all of it is still there.
    for left in range(WORK - 1, -1, -1):
        answer = post(server, client, outputFormat="webp")
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-RateLimit-Remaining"] == str(left)
    assert_limited(post(server, client), WORK)
    assert_limited(post(server, client, path="/api/convert", outputFormat="png"), WORK)


def test_only_one_image_in_preview_mode_is_a_preview(server: GunicornServer) -> None:
    client = "192.0.2.11"
    # mode=final, a batch in preview mode, and a preview on /api/convert: all real work.
    assert post(server, client, mode="final").headers["X-RateLimit-Limit"] == str(WORK)
    batch = post(server, client, files=2, mode="preview")
    assert batch.status_code == 200, batch.text
    assert batch.headers["X-RateLimit-Limit"] == str(WORK)
    converted = post(server, client, path="/api/convert", mode="preview", outputFormat="png")
    assert converted.headers["X-RateLimit-Limit"] == str(PREVIEWS)  # one image: a preview
    assert converted.headers["Content-Type"] == "image/png"
    assert post(server, client).headers["X-RateLimit-Remaining"] == "0"
    assert_limited(post(server, client, mode="final"), WORK)
    # The work budget is spent, previews go on.
    assert post(server, client, mode="preview").status_code == 200


def test_clients_have_their_own_preview_budgets(server: GunicornServer) -> None:
    for _ in range(PREVIEWS):
        assert post(server, "192.0.2.12", mode="preview").status_code == 200
    assert post(server, "192.0.2.12", mode="preview").status_code == 429
    assert post(server, "192.0.2.13", mode="preview").status_code == 200
