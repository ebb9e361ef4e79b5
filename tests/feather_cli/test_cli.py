"""The `feather` command line, run as a user runs it: a subprocess on real files."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from PIL import Image, ImageCms

from tests.helpers import assert_image_similar, open_image
from tests.images import animated_gif, encode, marked, photo, with_orientation
from tests.server import ROOT, free_port

_SCRIPT = Path(sys.executable).with_name("feather")
FEATHER = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "feather_cli.main"]


def feather(*args: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(cwd / "var")}
    return subprocess.run([*FEATHER, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """photos/ with a JPEG, a PNG with alpha two levels down, an animated GIF, a broken
    JPEG and a text file."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.jpg").write_bytes(encode(photo(320, 240, seed=1), "JPEG", quality=95))
    (root / "sub" / "b.png").write_bytes(encode(photo(200, 150, seed=2, mode="RGBA"), "PNG"))
    (root / "sub" / "deeper" / "c.gif").write_bytes(animated_gif(frames=4))
    jpeg = encode(photo(64, 64, seed=3), "JPEG")
    (root / "sub" / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "notes.txt").write_text("not an image, and not a failure")
    return root


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_compress_folder_keeps_tree_and_reports_failures(tree: Path, tmp_path: Path) -> None:
    before = _snapshot(tree)
    run = feather("compress", tree, "-o", tmp_path / "out", "--format", "webp",
                  "--max-width", "160", "--jobs", "2", cwd=tmp_path)

    assert run.returncode == 1, run.stderr
    assert "broken.jpg" in run.stderr
    assert "INVALID_IMAGE" in run.stderr
    out = tmp_path / "out"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.webp", "sub/b.webp", "sub/deeper/c.webp"]
    a = open_image((out / "a.webp").read_bytes())
    assert (a.format, a.size) == ("WEBP", (160, 120))
    assert_image_similar(a, photo(320, 240, seed=1))
    b = open_image((out / "sub" / "b.webp").read_bytes())
    assert (b.format, b.size, b.mode) == ("WEBP", (160, 120), "RGBA")
    c = Image.open(out / "sub" / "deeper" / "c.webp")
    assert c.format == "WEBP"
    assert c.n_frames == 4
    # The summary names every written file and the totals; inputs are untouched.
    assert "sub/b.webp" in run.stdout
    assert "3 files" in run.stdout
    assert "1 failed" in run.stdout
    assert _snapshot(tree) == before


def test_default_output_is_next_to_the_input_and_never_replaces_it(tmp_path: Path) -> None:
    source = tmp_path / "shot.jpg"
    original = encode(photo(300, 200, seed=4), "JPEG", quality=95)
    source.write_bytes(original)

    run = feather("compress", "shot.jpg", "-q", "60", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # auto makes a photo WebP; the file is named after what it holds.
    out = open_image((tmp_path / "shot-compressed.webp").read_bytes())
    assert (out.format, out.size) == ("WEBP", (300, 200))
    assert (tmp_path / "shot-compressed.webp").stat().st_size < len(original)

    # -o pointing at the input's own folder would overwrite it: refused, file kept.
    run = feather("compress", "shot.jpg", "-o", ".", cwd=tmp_path)
    assert run.returncode == 1
    assert "WOULD_OVERWRITE" in run.stderr
    assert "shot.jpg" in run.stderr
    assert source.read_bytes() == original


def test_in_place_replaces_inputs(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(encode(marked(120, 80), "PNG"))
    jpeg = encode(photo(200, 100, seed=5), "JPEG", quality=98)
    (tmp_path / "p.jpg").write_bytes(jpeg)

    run = feather("compress", "logo.png", "--in-place", "-f", "webp", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "logo.png").exists()
    assert open_image((tmp_path / "logo.webp").read_bytes()).format == "WEBP"

    # auto makes the photo WebP: the file takes the name of what it holds.
    run = feather("compress", "p.jpg", "--in-place", "-q", "50", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "p.jpg").exists()
    replaced = (tmp_path / "p.webp").read_bytes()
    assert open_image(replaced).format == "WEBP"
    assert len(replaced) < len(jpeg)
    assert open_image(replaced).size == (200, 100)

    run = feather("compress", "p.jpg", "--in-place", "-o", "x", cwd=tmp_path)
    assert run.returncode == 2
    assert "exclude each other" in run.stderr


def test_two_inputs_never_write_one_output(tmp_path: Path) -> None:
    (tmp_path / "same.png").write_bytes(encode(marked(60, 40), "PNG"))
    (tmp_path / "same.jpg").write_bytes(encode(marked(60, 40), "JPEG"))
    run = feather("compress", "same.png", "same.jpg", "-f", "webp", "-o", "out", cwd=tmp_path)
    assert run.returncode == 1
    assert "OUTPUT_COLLISION" in run.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["same.webp"]


def test_jobs_give_the_same_outputs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for seed in range(4):
        (src / f"img{seed}.png").write_bytes(encode(photo(160, 120, seed=seed), "PNG"))
    results = {}
    for jobs in ("1", "3"):
        run = feather("compress", "src", "-o", f"out{jobs}", "-f", "avif", "--jobs", jobs,
                      "--json", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["files"] == 4
        assert report["failed"] == 0
        assert report["outputBytes"] == sum(r["outputBytes"] for r in report["results"])
        results[jobs] = {p.name: p.read_bytes() for p in (tmp_path / f"out{jobs}").iterdir()}
    assert sorted(results["1"]) == [f"img{i}.avif" for i in range(4)]
    assert results["1"] == results["3"]
    assert open_image(results["3"]["img2.avif"]).size == (160, 120)


def test_globs_and_missing_paths(tmp_path: Path, tree: Path) -> None:
    run = feather("compress", "photos/**/*.png", "missing.jpg", "-o", "out", cwd=tmp_path)
    assert run.returncode == 1
    assert "missing.jpg: NOT_FOUND" in run.stderr
    assert (tmp_path / "out" / "sub" / "b.webp").is_file()  # tree below the glob's root


def test_bad_options_are_usage_errors_named_like_the_cli(tmp_path: Path, tree: Path) -> None:
    run = feather("compress", tree, "--quality", "300", "--crop-x", "3", cwd=tmp_path)
    assert run.returncode == 2
    assert "--quality must be a number between 1 and 100, or auto" in run.stderr
    assert "--crop-width is required" in run.stderr
    run = feather("convert", tree, cwd=tmp_path)
    assert run.returncode == 2
    assert "--output-format" in run.stderr
    assert not any(p.name.endswith("-compressed.jpg") for p in tree.rglob("*"))


def _cli_bytes(tmp_path: Path, data: bytes, command: str, args: list[str]) -> bytes:
    work = tmp_path / f"cli-{abs(hash((command, *args)))}"
    work.mkdir()
    (work / "in.jpg").write_bytes(data)
    run = feather(command, "in.jpg", "-o", "out", "--jobs", "1", *args, cwd=work)
    assert run.returncode == 0, run.stderr
    (output,) = (work / "out").iterdir()
    return output.read_bytes()


SAME_AS_API = [
    ("compress", {"outputFormat": "webp", "quality": "70", "maxWidth": "200"},
     ["-f", "webp", "-q", "70", "--max-width", "200"]),
    ("compress", {"outputFormat": "jpeg", "progressive": "true", "grayscale": "true",
                  "rotate": "90", "stripMetadata": "false"},
     ["--format", "jpeg", "--progressive", "--grayscale", "--rotate", "90", "--keep-metadata"]),
    ("compress", {"targetMB": "0.012"}, ["--target-mb", "0.012"]),
    ("compress", {"outputFormat": "png", "cropX": "10", "cropY": "20", "cropWidth": "150",
                  "cropHeight": "90", "flop": "true", "brightness": "1.3", "blur": "1.5"},
     ["-f", "png", "--crop-x", "10", "--crop-y", "20", "--crop-width", "150",
      "--crop-height", "90", "--flop", "--brightness", "1.3", "--blur", "1.5"]),
    ("convert", {"outputFormat": "avif", "quality": "55", "effort": "7", "maxHeight": "120"},
     ["-f", "avif", "-q", "55", "--effort", "7", "--max-height", "120"]),
]


@pytest.mark.parametrize(("command", "form", "args"), SAME_AS_API,
                         ids=[" ".join(a) for _, _, a in SAME_AS_API])
def test_cli_bytes_equal_the_api(client: FlaskClient, tmp_path: Path, command: str,
                                 form: dict[str, str], args: list[str]) -> None:
    data = with_orientation(photo(360, 240, seed=7), 6)
    answer = client.post(f"/api/{command}", data={"file": (io.BytesIO(data), "in.jpg"), **form},
                         content_type="multipart/form-data")
    assert answer.status_code == 200, answer.get_json()
    assert _cli_bytes(tmp_path, data, command, args) == answer.data


def _icc_png() -> bytes:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(photo(90, 60, seed=8), "PNG", icc_profile=srgb)


def test_info(tmp_path: Path) -> None:
    (tmp_path / "turned.jpg").write_bytes(with_orientation(marked(300, 200), 6))
    (tmp_path / "anim.gif").write_bytes(animated_gif(frames=4, durations=[100, 200, 300, 400]))
    (tmp_path / "icc.png").write_bytes(_icc_png())
    (tmp_path / "text.jpg").write_text("hello")

    run = feather("info", "turned.jpg", "anim.gif", "icc.png", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    turned, anim, icc = json.loads(run.stdout)
    assert (turned["format"], turned["width"], turned["height"]) == ("jpeg", 300, 200)
    assert (turned["storedWidth"], turned["orientation"], turned["hasExif"]) == (200, 6, True)
    assert (anim["format"], anim["frames"], anim["animated"]) == ("gif", 4, True)
    assert anim["durationMs"] == 1000
    assert anim["loop"] == 0
    assert icc["iccProfile"]
    assert "sRGB" in icc["iccProfile"]
    assert icc["hasAlpha"] is False
    assert icc["pixels"] == 90 * 60
    assert icc["bytes"] == (tmp_path / "icc.png").stat().st_size

    text = feather("info", "turned.jpg", cwd=tmp_path).stdout
    assert "rotated 90° CW" in text
    assert "300 x 200" in text

    run = feather("info", "text.jpg", cwd=tmp_path)
    assert run.returncode == 1
    assert "INVALID_IMAGE" in run.stderr


def test_help_everywhere(tmp_path: Path) -> None:
    for command in ([], ["compress"], ["convert"], ["info"], ["serve"], ["keys"]):
        run = feather(*command, "--help", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "Usage: feather" in run.stdout
    assert "--max-width" in feather("compress", "--help", cwd=tmp_path).stdout


def test_keys_and_sweep_commands(tmp_path: Path) -> None:
    run = feather("keys", "create", "--plan", "pro", "--name", "cli-test", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    raw = run.stdout.split()[0]
    assert re.fullmatch(r"flx_live_[0-9a-f]{40}", raw)
    listed = feather("keys", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert raw[:14] in listed.stdout
    assert "pro" in listed.stdout
    assert raw not in listed.stdout
    run = feather("sweep", cwd=tmp_path)
    assert run.returncode == 0
    assert "expired output(s) deleted" in run.stdout


def test_serve_runs_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0"}
    server = subprocess.Popen([*FEATHER, "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "feather serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json()["ok"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert ROOT.joinpath("gunicorn.conf.py").is_file()
