"""Every curl example of feather-api.txt, run with curl against a real gunicorn (2 workers).

The commands are the document's, character for character, except that the port is the
test server's.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import open_image
from tests.images import encode, photo
from tests.server import GunicornServer

EXAMPLES = {
    "basic": """curl -X POST http://localhost:3000/api/compress \\
-F "file=@photo.jpg" \\
-F "outputFormat=webp" \\
-F "quality=80" \\
--output out.webp""",
    "target": """curl -X POST http://localhost:3000/api/compress \\
-F "file=@photo.jpg" \\
-F "targetMB=0.5" \\
--output out.webp""",
    "avif": """curl -X POST http://localhost:3000/api/compress \\
-F "file=@photo.jpg" \\
-F "outputFormat=avif" \\
-F "maxWidth=1600" \\
-F "grayscale=true" \\
--output out.avif""",
    "convert": """curl -X POST http://localhost:3000/api/convert \\
-F "file=@photo.heic" \\
-F "outputFormat=jpeg" \\
-F "quality=85" \\
--output out.jpg""",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("curl")
    # A 6 MP photo-like JPEG that is well over the 500 KB cap.
    (folder / "photo.jpg").write_bytes(encode(photo(3000, 2000, seed=7), "JPEG", quality=95))
    (folder / "photo.heic").write_bytes(encode(photo(1200, 900, seed=8), "HEIF", quality=90))
    return folder


def _curl(command: str, server: GunicornServer, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = command.replace("http://localhost:3000", server.url)
    args = shlex.split(command.replace("\\\n", " "))
    return subprocess.run([*args, "-sS", "-D", "-"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _headers(raw: str) -> dict[str, str]:
    lines = raw.strip().splitlines()
    return {k.strip().lower(): v.strip() for k, v in
            (line.split(":", 1) for line in lines[1:] if ":" in line)}


def test_health_and_formats(live_server: GunicornServer) -> None:
    health = subprocess.run(["curl", "-sS", live_server.url + "/api/health"],
                            capture_output=True, text=True, check=True)
    assert json.loads(health.stdout)["ok"] is True
    formats = subprocess.run(["curl", "-sS", live_server.url + "/api/formats"],
                             capture_output=True, text=True, check=True)
    assert json.loads(formats.stdout)["output"] == ["jpeg", "png", "webp", "avif"]


def test_basic(live_server: GunicornServer, workdir: Path) -> None:
    done = _curl(EXAMPLES["basic"], live_server, workdir)
    assert done.returncode == 0, done.stderr
    headers = _headers(done.stdout)
    assert headers["content-type"] == "image/webp"
    out = open_image((workdir / "out.webp").read_bytes())
    assert out.format == "WEBP"
    assert out.size == (3000, 2000)
    assert headers["x-output-quality"] == "80"


def test_target_500_kb(live_server: GunicornServer, workdir: Path) -> None:
    done = _curl(EXAMPLES["target"], live_server, workdir)
    assert done.returncode == 0, done.stderr
    headers = _headers(done.stdout)
    data = (workdir / "out.webp").read_bytes()
    assert len(data) <= 500_000
    assert headers["x-target-met"] == "true"
    assert int(headers["x-output-bytes"]) == len(data)
    # auto picks WebP for a photo, as the example's file name says.
    assert open_image(data).format == "WEBP"
    assert len(data) >= 0.5 * 500_000


def test_resize_grayscale_avif(live_server: GunicornServer, workdir: Path) -> None:
    done = _curl(EXAMPLES["avif"], live_server, workdir)
    assert done.returncode == 0, done.stderr
    out = open_image((workdir / "out.avif").read_bytes())
    assert out.format == "AVIF"
    assert out.size == (1600, 1067)
    red, green, blue = out.convert("RGB").getpixel((800, 100))
    assert max(red, green, blue) - min(red, green, blue) <= 6
    assert _headers(done.stdout)["x-resized"] == "true"


def test_convert_heic(live_server: GunicornServer, workdir: Path) -> None:
    done = _curl(EXAMPLES["convert"], live_server, workdir)
    assert done.returncode == 0, done.stderr
    out = open_image((workdir / "out.jpg").read_bytes())
    assert out.format == "JPEG"
    assert out.size == (1200, 900)
    assert _headers(done.stdout)["x-output-quality"] == "85"


def test_timeout_leaves_the_worker_alive(tmp_path: Path, workdir: Path) -> None:
    server = GunicornServer({"DATA_DIR": str(tmp_path), "REQUEST_TIMEOUT_MS": "50",
                             "RATE_LIMIT_PER_MINUTE": "0"}, workers=2)
    with server:
        pids = set(server.worker_pids())
        done = _curl(EXAMPLES["avif"].replace("maxWidth=1600", "effort=9"), server, workdir)
        assert '"TIMEOUT"' in (workdir / "out.avif").read_text(errors="replace")
        assert _headers(done.stdout).get("content-type") == "application/json"
        health = subprocess.run(["curl", "-sS", server.url + "/api/health"],
                                capture_output=True, text=True, check=True)
        assert json.loads(health.stdout)["ok"] is True
        assert set(server.worker_pids()) == pids
