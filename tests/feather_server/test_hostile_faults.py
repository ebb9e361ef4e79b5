"""Faults while decoding: a job process or a whole worker killed with SIGKILL mid-request."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from feather_core import svg
from feather_core.errors import FeatherError
from feather_core.options import Limits
from tests.images import encode, photo
from tests.processes import cpu_ticks, descendants, parent
from tests.server import GunicornServer


def _slow_svg() -> bytes:
    # 10,000 circles of 7 MP each (far under the drawn-elements cap): seconds of cairo work.
    defs = ['<circle id="l0" r="1500" cx="2000" cy="2000" fill="#08f" fill-opacity="0.01"/>']
    for i in range(1, 5):
        uses = "".join(f'<use xlink:href="#l{i - 1}" x="{j}"/>' for j in range(10))
        defs.append(f'<g id="l{i}">{uses}</g>')
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
            f' width="4000" height="4000"><defs>{"".join(defs)}</defs>'
            '<use xlink:href="#l4"/></svg>').encode()


def _job_processes(pid: int) -> list[int]:
    """Descendants of ``pid`` started by a fork server: the job processes."""
    def forked_by_server(child: int) -> bool:
        try:
            return b"forkserver" in Path(f"/proc/{parent(child)}/cmdline").read_bytes()
        except OSError:
            return False

    return [child for child in descendants(pid) if forked_by_server(child)]


def _busy(pids: list[int]) -> list[int]:
    """The processes of ``pids`` that used the CPU over the next few tenths of a second."""
    before = {p: cpu_ticks(p) for p in pids}
    time.sleep(0.3)
    return [p for p in pids if cpu_ticks(p) - before[p] > 3]


def _wait_for(predicate: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_killed_renderer_gives_a_documented_error() -> None:
    outcome: dict[str, BaseException | bytes] = {}

    def render() -> None:
        try:
            outcome["result"] = svg.rasterize(_slow_svg(), Limits(timeout=60))
        except BaseException as exc:  # noqa: BLE001 - recorded and checked below
            outcome["result"] = exc

    def renderers() -> list[int]:
        # Only the job process drawing for this test: other descendants of the test
        # process (a session's gunicorn, say) must live on.
        return _busy([pid for pid in _job_processes(os.getpid()) if pid not in before])

    before = set(_job_processes(os.getpid()))
    thread = threading.Thread(target=render)
    thread.start()
    assert _wait_for(lambda: renderers() or "result" in outcome)
    for child in renderers():
        os.kill(child, signal.SIGKILL)
    thread.join(60)
    result = outcome.get("result")
    if isinstance(result, bytes):
        pytest.skip("the render finished before it could be killed")
    assert isinstance(result, FeatherError), result
    assert result.code in ("TIMEOUT", "INVALID_IMAGE")


@pytest.fixture
def fault_server(tmp_path: Path) -> GunicornServer:
    server = GunicornServer({"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
                             "TMPDIR": str(tmp_path / "tmp")}, workers=2)
    (tmp_path / "tmp").mkdir()
    server.start(tmp_path)
    yield server
    server.stop()


def test_worker_killed_mid_render_is_replaced_and_leaves_nothing(
        fault_server: GunicornServer, tmp_path: Path) -> None:
    answers: list[object] = []

    def slow_request() -> None:
        try:
            answers.append(requests.post(fault_server.url + "/api/compress",
                                         files={"file": ("slow.svg", _slow_svg())},
                                         timeout=120).status_code)
        except requests.RequestException as exc:
            answers.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    busy: list[int] = []

    def find_busy_worker() -> bool:
        busy[:] = [w for w in fault_server.worker_pids() if _busy(_job_processes(w))]
        return bool(busy) or bool(answers)

    assert _wait_for(find_busy_worker, 60)
    if not busy:
        pytest.skip("the render finished before the worker could be killed")
    worker = busy[0]
    renderer = descendants(worker)
    os.kill(worker, signal.SIGKILL)
    thread.join(120)
    # A killed process cannot answer: the client sees the connection end, not a hang.
    assert answers, answers
    assert isinstance(answers[0], requests.RequestException) or \
        answers[0] in (422, 502, 504), answers
    # Its job processes die with it (PR_SET_PDEATHSIG), the arbiter starts a new worker.
    assert _wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in renderer), 30)
    assert _wait_for(lambda: len(fault_server.worker_pids()) == 2
                     and worker not in fault_server.worker_pids(), 60)
    ok = requests.post(fault_server.url + "/api/compress",
                       files={"file": ("p.png", encode(photo(64, 48), "PNG"))}, timeout=60)
    assert ok.status_code == 200
    # Nothing of Feather's is left; the killed worker's multiprocessing folder (the fork
    # server's socket) is Python's own and holds no data.
    assert [p for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("pymp-")] == []
