"""A real HTTP server on 127.0.0.1 standing in for the model download host.

It serves bodies per path, records every request (path and headers, so tests can see
the Authorization header) and can be told, per path, to answer slowly, with an error
status, with a body cut short, without a Content-Length, trickling, or with a redirect.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    """How the upstream answers one path."""

    body: bytes = b""
    status: int = 200
    delay: float = 0.0  # seconds before the status line
    truncate_at: int | None = None  # announce the full length, send this many bytes, close
    chunked: bool = False  # no Content-Length (Transfer-Encoding: chunked)
    trickle: float = 0.0  # seconds between 64-byte pieces of the body
    redirect_to: str | None = None  # Location of a 302
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    headers: Mapping[str, str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; requests are recorded instead

    def do_GET(self) -> None:
        upstream = self.server.upstream
        path = self.path.split("?", 1)[0]
        upstream._record(Seen("GET", path, {k.lower(): v for k, v in self.headers.items()}))
        route = upstream.routes.get(path)
        if route is None:
            route = Route(body=b"not found", status=404)
        if route.delay and upstream._stopping.wait(route.delay):
            return
        if route.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", route.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(route.status)
        self.send_header("Content-Type", "application/octet-stream")
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(route.body)))
        body = route.body if route.truncate_at is None else route.body[:route.truncate_at]
        if route.truncate_at is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self._send_body(body, route)

    def _send_body(self, body: bytes, route: Route) -> None:
        piece = 64 if route.trickle else max(len(body), 1)
        for start in range(0, len(body), piece):
            chunk = body[start:start + piece]
            if route.trickle and start and self.server.upstream._stopping.wait(route.trickle):
                return
            try:
                if route.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
        if route.chunked:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    upstream: Upstream


class Upstream:
    """``with Upstream() as up: up.route("/m.onnx", Route(body=...)); up.url("/m.onnx")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, route: Route) -> str:
        """Answer ``path`` as ``route`` says; returns its URL."""
        self.routes[path] = route
        return self.url(path)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if path is None or s.path == path]

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts delays and trickles short
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

