"""Raw HTTP clients for request bodies: huge ones made on the fly, stalled ones, and
the memory of the gunicorn worker that reads them."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOUNDARY = "feather-test-boundary"


@dataclass
class Part:
    """One multipart part: a field (``filename`` None) or a file of ``size`` bytes."""

    name: str
    size: int = 0
    filename: str | None = None
    value: bytes = b""  # a field's value, or the first bytes of a file

    def head(self) -> bytes:
        disposition = f'form-data; name="{self.name}"'
        if self.filename is not None:
            disposition += f'; filename="{self.filename}"'
        kind = "\r\nContent-Type: application/octet-stream" if self.filename is not None else ""
        return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}{kind}\r\n\r\n".encode()

    def length(self) -> int:
        return len(self.head()) + (self.size if self.filename is not None
                                   else len(self.value)) + 2

    def chunks(self, step: int) -> Iterator[bytes]:
        yield self.head()
        if self.filename is None:
            yield self.value
        else:
            yield self.value
            left = self.size - len(self.value)
            filler = b"\xa5" * step
            while left > 0:
                yield filler[:min(step, left)]
                left -= step
        yield b"\r\n"


def form_length(parts: Iterable[Part]) -> int:
    return sum(p.length() for p in parts) + len(f"--{BOUNDARY}--\r\n")


def form_chunks(parts: Iterable[Part], step: int = 1 << 20) -> Iterator[bytes]:
    for part in parts:
        yield from part.chunks(step)
    yield f"--{BOUNDARY}--\r\n".encode()


@dataclass
class Answer:
    status: int  # 0: the connection ended without an answer
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0  # body bytes the client had sent when the answer came
    seconds: float = 0.0  # from the first byte sent to the answer

    def json(self) -> Any:
        return json.loads(self.body)


def post_raw(port: int, path: str, chunks: Iterable[bytes], content_length: int | None,
             headers: dict[str, str] | None = None, timeout: float = 120,
             stall_after: int | None = None) -> Answer:
    """POST a body chunk by chunk, stopping as soon as the server answers.

    ``stall_after``: send that many body bytes, then nothing more (the connection
    stays open) until the server answers or ``timeout`` passes.
    """
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}", "Connection: close"]
    if content_length is not None:
        head.append(f"Content-Length: {content_length}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    started = time.monotonic()
    sent = 0
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in chunks:
            if stall_after is not None and sent + len(chunk) > stall_after:
                chunk = chunk[:stall_after - sent]
            view = memoryview(chunk)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], timeout)
                if readable:
                    return _answer(sock, sent, started)
                if not writable:
                    return Answer(0, sent=sent, seconds=time.monotonic() - started)
                try:
                    n = sock.send(view[:1 << 16])
                except (BrokenPipeError, ConnectionResetError):
                    return _answer(sock, sent, started)
                sent += n
                view = view[n:]
            if stall_after is not None and sent >= stall_after:
                break
        return _answer(sock, sent, started)
    finally:
        sock.close()


def _answer(sock: socket.socket, sent: int, started: float) -> Answer:
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
            if complete(data):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    seconds = time.monotonic() - started
    if not data.startswith(b"HTTP/1."):
        return Answer(0, sent=sent, seconds=seconds)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, body, sent, seconds)


def complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole HTTP answer with a Content-Length."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    """Start the peak (VmHWM) afresh from the current RSS (Linux's clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
