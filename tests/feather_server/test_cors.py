"""CORS: allowed and disallowed origins, preflights, exposed result headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Response

from feather_server import create_app
from feather_server.settings import Settings
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(64, 48), "JPEG")
ALLOWED = "https://app.example"
OTHER_ALLOWED = "https://admin.example:8443"
DISALLOWED = "https://evil.example"
LIMIT = 5


def compress(url: str, origin: str | None, with_file: bool = True) -> requests.Response:
    headers = {"Origin": origin} if origin else {}
    files = {"file": ("photo.jpg", JPEG, "image/jpeg")} if with_file else None
    return requests.post(url + "/api/compress", files=files, headers=headers, timeout=120)


def preflight(url: str, origin: str, path: str = "/api/compress") -> requests.Response:
    return requests.options(url + path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, x-request-id"}, timeout=60)


def exposed(response: requests.Response) -> set[str]:
    value = response.headers.get("Access-Control-Expose-Headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def cors_headers(response: requests.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("cors")
    gunicorn = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": str(LIMIT),
                               "CORS_ORIGINS": f"{ALLOWED}, {OTHER_ALLOWED}/"}, workers=2)
    gunicorn.start(data)
    yield gunicorn
    gunicorn.stop()


def test_preflight_is_answered_for_allowed_origins_and_never_limited(
        server: GunicornServer) -> None:
    for _ in range(LIMIT + 3):
        response = preflight(server.url, ALLOWED)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed_headers
        assert "x-request-id" in allowed_headers
        assert int(response.headers["Access-Control-Max-Age"]) > 0
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "X-RateLimit-Limit" not in response.headers
    other = preflight(server.url, OTHER_ALLOWED, "/api/convert")
    assert other.headers["Access-Control-Allow-Origin"] == OTHER_ALLOWED


def test_allowed_origin_reads_the_result_and_rate_limit_headers(
        server: GunicornServer) -> None:
    response = compress(server.url, ALLOWED)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    names = exposed(response)
    # Every X-* header this response carries is readable by the page's script.
    sent = {name.lower() for name in response.headers if name.lower().startswith("x-")}
    assert {"x-output-bytes", "x-compression-ratio", "x-ratelimit-remaining",
            "x-ratelimit-reset", "x-request-id"} <= sent
    assert sent <= names
    assert {"content-disposition", "retry-after"} <= names
    # The preflights above did not spend the budget.
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)

    error = compress(server.url, ALLOWED, with_file=False)
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "x-ratelimit-remaining" in exposed(error)


def test_disallowed_origin_gets_no_cors_headers(server: GunicornServer) -> None:
    assert cors_headers(preflight(server.url, DISALLOWED)) == []
    response = compress(server.url, DISALLOWED)
    assert cors_headers(response) == []
    # A page on that origin cannot read it; a non-browser client is still served.
    assert response.status_code == 200
    assert cors_headers(compress(server.url, None)) == []
    assert cors_headers(preflight(server.url, "https://app.example.evil.example")) == []


def test_over_the_limit_the_429_is_readable_cross_origin(server: GunicornServer) -> None:
    statuses = [compress(server.url, ALLOWED).status_code for _ in range(LIMIT + 1)]
    assert statuses[-1] == 429
    limited = compress(server.url, ALLOWED)
    assert limited.status_code == 429
    assert limited.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert {"retry-after", "x-ratelimit-reset"} <= exposed(limited)


def app_client(tmp_path: Path, origins: tuple[str, ...]):  # type: ignore[no-untyped-def]
    settings = Settings.from_env({}, data_dir=str(tmp_path), rate_limit_per_minute=0,
                                 cors_origins=origins)
    app = create_app(settings)

    @app.get("/api/cors-probe")
    def probe() -> Response:
        return Response("ok", headers={"X-Brand-New-Result": "1"})

    return app.test_client()


def test_wildcard_allows_any_origin_without_credentials(tmp_path: Path) -> None:
    client = app_client(tmp_path, ("*",))
    response = client.get("/api/formats", headers={"Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    answer = client.options("/api/compress", headers={
        "Origin": "https://anyone.example", "Access-Control-Request-Method": "POST"})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_any_x_header_of_a_new_endpoint_is_exposed(tmp_path: Path) -> None:
    client = app_client(tmp_path, (ALLOWED,))
    response = client.get("/api/cors-probe", headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Brand-New-Result" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_no_origins_configured_means_no_cors(tmp_path: Path) -> None:
    client = app_client(tmp_path, ())
    response = client.get("/api/formats", headers={"Origin": ALLOWED})
    assert not [n for n, _ in response.headers.items() if n.startswith("Access-Control-")]
    answer = client.options("/api/compress", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in answer.headers
