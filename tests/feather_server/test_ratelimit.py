"""Rate limits under a real gunicorn with 2 workers: SQLite-shared counters on one host,
Redis-shared counters across two instances, Redis stopped and started, proxies."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from tests.images import encode, photo
from tests.server import GunicornServer, free_port

LIMIT = 5
JPEG = encode(photo(64, 48), "JPEG")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def compress(url: str, headers: dict[str, str] | None = None,
             path: str = "/api/compress") -> requests.Response:
    return requests.post(url + path, files={"file": ("photo.jpg", JPEG, "image/jpeg")},
                         headers=headers, timeout=120)


def served_pids(server: GunicornServer, path: str, requests_sent: int,
                skip: int = 0) -> set[str]:
    """The workers that served POST ``path``, once all its access lines are written."""
    deadline = time.monotonic() + 30
    while True:
        lines = [line for line in server.log().splitlines() if f'"POST {path} ' in line]
        if len(lines) >= requests_sent or time.monotonic() > deadline:
            return {line.split("pid=")[1].split()[0] for line in lines[skip:]}
        time.sleep(0.05)


def assert_rate_headers(response: requests.Response, remaining: int | None = None) -> None:
    for name in RATE_HEADERS:
        assert name in response.headers, (name, response.status_code, response.headers)
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    reset = int(response.headers["X-RateLimit-Reset"])
    assert time.time() - 5 < reset <= time.time() + 65  # unix seconds, within the minute
    if remaining is not None:
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)


def assert_429(response: requests.Response) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"]["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert_rate_headers(response, remaining=0)


def start(tmp_path_factory: pytest.TempPathFactory, **env: str) -> GunicornServer:
    data = tmp_path_factory.mktemp("ratelimit")
    server = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": str(LIMIT), **env},
                            workers=2)
    return server.start(data)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """No Redis, no proxy in front: clients connect straight to gunicorn."""
    server = start(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """No Redis, one trusted proxy in front: each test plays its own client IP."""
    server = start(tmp_path_factory, TRUSTED_PROXIES="1")
    yield server
    server.stop()


def test_every_working_response_has_the_headers_and_the_limit_holds(
        direct: GunicornServer) -> None:
    url = direct.url
    ok = compress(url)
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "image/webp"
    assert_rate_headers(ok, remaining=LIMIT - 1)
    assert "Retry-After" not in ok.headers

    # Errors of working endpoints count and carry the headers too.
    bad_convert = compress(url, path="/api/convert")  # outputFormat missing
    assert bad_convert.status_code == 400
    assert_rate_headers(bad_convert, remaining=LIMIT - 2)
    no_file = requests.post(url + "/api/compress", timeout=60)
    assert no_file.status_code == 400
    assert_rate_headers(no_file, remaining=LIMIT - 3)
    bad_model = requests.get(url + "/api/model", params={"variant": "nope"}, timeout=60)
    assert bad_model.status_code == 400
    assert_rate_headers(bad_model, remaining=LIMIT - 4)

    # Spoofed X-Forwarded-For from a client with no proxy in front changes nothing.
    last = compress(url, headers={"X-Forwarded-For": "203.0.113.9"})
    assert last.status_code == 200
    assert_rate_headers(last, remaining=0)
    for i in range(3):
        spoofed = compress(url, headers={"X-Forwarded-For": f"198.51.100.{i + 1}",
                                         "X-Real-IP": f"198.51.100.{i + 1}"})
        assert_429(spoofed)
    assert_429(compress(url, path="/api/convert"))
    # FluxImage-dialect requests get FluxImage's envelope.
    for flux in (compress(url, path="/api/batch"),
                 compress(url, headers={"Accept": "application/json"})):
        assert flux.status_code == 429
        assert flux.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert flux.json()["message"]
        assert 1 <= int(flux.headers["Retry-After"]) <= 60

    # Health and formats do no work: not limited, no headers.
    for path in ("/api/health", "/api/formats"):
        free = requests.get(url + path, timeout=60)
        assert free.status_code == 200
        assert "X-RateLimit-Limit" not in free.headers
    usage = requests.get(url + "/api/usage", timeout=60)  # a read of one's own counters
    assert usage.status_code != 429
    assert "X-RateLimit-Limit" not in usage.headers
    # Counters are shared through the SQLite file in DATA_DIR.
    assert (Path(direct.env["DATA_DIR"]) / "ratelimit.sqlite3").is_file()


def test_exactly_the_limit_across_workers_under_concurrency(proxied: GunicornServer) -> None:
    # The kernel may hand a whole burst to one worker; the budget is only shown to be the
    # service's when both workers served one client's burst, so bursts are repeated (each
    # from a new client) until that happens. Every burst must give exactly the limit.
    for attempt in range(6):
        client = {"X-Forwarded-For": f"10.1.0.{attempt + 1}"}
        seen = len([line for line in proxied.log().splitlines() if '"POST /api/compress ' in line])
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda _, c=client: compress(proxied.url, c), range(14)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) == LIMIT, statuses
        assert statuses.count(429) == 14 - LIMIT, statuses
        for response in responses:
            if response.status_code == 429:
                assert_429(response)
            else:
                assert_rate_headers(response)
        if len(served_pids(proxied, "/api/compress", seen + 14, skip=seen)) == 2:
            return
    pytest.fail("no burst was shared by both workers")


def test_behind_a_proxy_each_client_has_its_own_budget_and_cannot_spoof(
        proxied: GunicornServer) -> None:
    # The proxy appends the address it saw; what the client wrote before it is ignored.
    for i in range(LIMIT):
        response = compress(proxied.url, {"X-Forwarded-For": f"192.0.2.{i}, 10.2.0.1"})
        assert response.status_code == 200
        assert_rate_headers(response, remaining=LIMIT - 1 - i)
    assert_429(compress(proxied.url, {"X-Forwarded-For": "192.0.2.99, 10.2.0.1"}))
    other = compress(proxied.url, {"X-Forwarded-For": "10.2.0.2"})
    assert other.status_code == 200
    assert_rate_headers(other, remaining=LIMIT - 1)


def test_zero_disables(live_server: GunicornServer) -> None:
    # The session's live server runs with RATE_LIMIT_PER_MINUTE=0.
    for _ in range(LIMIT + 3):
        response = compress(live_server.url)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
        assert "Retry-After" not in response.headers


def test_two_instances_share_one_budget_through_redis(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    prefix = f"feather-test-{uuid.uuid4().hex}"
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0", "RATE_LIMIT_KEY_PREFIX": prefix}
    hosts = [start(tmp_path_factory, **env), start(tmp_path_factory, **env)]
    try:
        statuses = []
        for i in range(LIMIT + 3):
            statuses.append(compress(hosts[i % 2].url).status_code)
        assert statuses == [200] * LIMIT + [429] * 3
        assert_429(compress(hosts[0].url))
        assert_429(compress(hosts[1].url))
        keys = list(redis.Redis(port=6379).scan_iter(match=f"*{prefix}*"))
        assert keys, "the counters are in Redis"
    finally:
        for host in hosts:
            host.stop()
        store = redis.Redis(port=6379)
        for key in store.scan_iter(match=f"*{prefix}*"):
            store.delete(key)


class RedisProcess:
    """A redis-server of this test's own, on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_redis_stopped_fails_open_and_started_limits_again(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    own = RedisProcess()
    own.start()
    server = start(tmp_path_factory, REDIS_URL=f"redis://127.0.0.1:{own.port}/0")
    try:
        for i in range(2):
            response = compress(server.url)
            assert response.status_code == 200
            assert_rate_headers(response, remaining=LIMIT - 1 - i)

        own.stop()
        # Redis gone: every request still succeeds (fail open), never a 500, and the
        # limiter says nothing it cannot know.
        for _ in range(LIMIT + 1):
            response = compress(server.url)
            assert response.status_code == 200
            assert "X-RateLimit-Remaining" not in response.headers
        assert "Rate-limit storage unavailable, letting requests through" in server.log()

        own.start()  # empty again: no persistence
        statuses = [compress(server.url).status_code for _ in range(LIMIT + 2)]
        assert statuses == [200] * LIMIT + [429] * 2
        assert requests.get(server.url + "/api/health", timeout=30).status_code == 200
    finally:
        server.stop()
        own.stop()
