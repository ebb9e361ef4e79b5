"""The README's first minutes, run as written: the curl on the shipped sample photo and the
command line on it, against a real gunicorn with the default settings."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import open_image
from tests.server import ROOT, GunicornServer

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_minutes() -> str:
    start = README.index("## First minutes")
    return README[start:README.index("\n## ", start + 1)]


def _commands(prefix: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", _first_minutes(), re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(prefix)]


def test_the_sample_photo_is_shipped_with_its_origin() -> None:
    sample = ROOT / "samples" / "coffee.jpg"
    assert open_image(sample.read_bytes()).size == (600, 400)
    notes = (ROOT / "samples" / "README.md").read_text(encoding="utf-8")
    assert "coffee.jpg" in notes
    assert "CC0" in notes
    assert "make run" in _first_minutes()
    for package in ("git", "make"):
        assert package in _first_minutes()


def test_the_curl_of_the_first_minutes(tmp_path: Path) -> None:
    (curl,) = _commands("curl ")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    data = tmp_path / "var"
    with GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": ""}) as server:
        args = shlex.split(curl.replace("http://localhost:3000", server.url))
        done = subprocess.run([*args, "-sS", "--fail"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "coffee.webp"
    assert open_image(output.read_bytes()).format == "WEBP"
    original = (tmp_path / "samples" / "coffee.jpg").stat().st_size
    assert output.stat().st_size < 0.7 * original  # "about half the size"


def test_the_command_line_of_the_first_minutes(tmp_path: Path) -> None:
    (command,) = _commands(".venv/bin/feather compress")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    args = shlex.split(command)
    feather = Path(sys.executable).with_name("feather")
    done = subprocess.run([str(feather), *args[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert open_image((tmp_path / "web" / "coffee.webp").read_bytes()).format == "WEBP"
    assert "samples/coffee.jpg" in done.stdout
