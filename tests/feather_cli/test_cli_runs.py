"""The `feather` command as people run it again and again: Ctrl-C, re-runs in the same
folder, pipes, files that would grow, and the table on a terminal. A real subprocess on
real files, as tests/feather_cli/test_cli.py runs it."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.feather_cli.test_cli import FEATHER, feather
from tests.helpers import open_image
from tests.images import encode, photo

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                parents[int(entry)] = int(stat.rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family = {pid}
    while True:
        found = {p for p, parent in parents.items() if parent in family} - family
        if not found:
            return family - {pid}
        family |= found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            alive.add(pid)
    return alive


@pytest.fixture
def slow_folder(tmp_path: Path) -> Path:
    """Photos that take AVIF at effort 7 a while each: a run lasts many seconds."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(24):
        (folder / f"p{seed:02}.png").write_bytes(encode(photo(480, 360, seed=seed), "PNG"))
    return folder


def _start_slow_run(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var")}
    return subprocess.Popen([*FEATHER, "compress", "photos", "-o", "out", "-f", "avif",
                             "--effort", "7", "--jobs", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_output(run: subprocess.Popen[str], out: Path) -> None:
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".avif" for p in out.iterdir())):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no output within 120 s"
        time.sleep(0.05)


def _exit_time(run: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    run.wait(timeout=30)
    return time.monotonic() - started


def test_ctrl_c_stops_at_once_with_a_partial_summary(slow_folder: Path, tmp_path: Path) -> None:
    run = _start_slow_run(tmp_path)
    out = tmp_path / "out"
    _wait_for_first_output(run, out)
    family = _descendants(run.pid)
    assert family, "the job processes run below the command"
    run.send_signal(signal.SIGINT)
    took = _exit_time(run)
    stdout, stderr = run.communicate(timeout=30)

    assert run.returncode == 130, stderr
    assert took < 2.0, f"exited {took:.2f} s after Ctrl-C"
    assert "Traceback" not in stderr
    assert "Aborted" not in stderr
    # The summary lists what was done; the rest is counted as not processed.
    done = int(re.search(r"^(\d+) files? ", stdout, re.M).group(1))  # type: ignore[union-attr]
    left = int(re.search(r"Interrupted: (\d+) of 24 files not processed", stderr)
               .group(1))  # type: ignore[union-attr]
    assert min(done, left) >= 1, (stdout, stderr)
    assert done + left == 24, (stdout, stderr)
    # Pending work stopped: no job process lives on, nothing more is written, and what was
    # written is whole (no temporary files left, every output decodes).
    deadline = time.monotonic() + 10
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(family)
    written = sorted(p.name for p in out.iterdir())
    time.sleep(1)
    assert sorted(p.name for p in out.iterdir()) == written
    assert all(name.endswith(".avif") for name in written), written
    assert len(written) == done
    for name in written:
        assert open_image((out / name).read_bytes()).format == "AVIF"
        assert f"out/{name}" in stdout


def test_a_second_ctrl_c_exits_immediately(slow_folder: Path, tmp_path: Path) -> None:
    run = _start_slow_run(tmp_path)
    out = tmp_path / "out"
    _wait_for_first_output(run, out)
    family = _descendants(run.pid)
    run.send_signal(signal.SIGINT)
    time.sleep(0.02)  # while the first is still stopping the jobs
    run.send_signal(signal.SIGINT)
    took = _exit_time(run)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 130, stderr
    assert took < 2.0, f"exited {took:.2f} s after Ctrl-C"
    assert "Traceback" not in stderr
    assert "leaked" not in stderr
    deadline = time.monotonic() + 10
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(family)
    assert not [p for p in out.iterdir() if not p.name.endswith(".avif")]


# ---------------------------------------------------------------- re-runs


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "beach.jpg").write_bytes(encode(photo(320, 240, seed=1), "JPEG", quality=95))
    (work / "logo.png").write_bytes(encode(photo(200, 150, seed=2, mode="RGBA"), "PNG"))
    (work / "scan.png").write_bytes(encode(photo(160, 120, seed=3), "PNG"))
    return work


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "var" not in p.relative_to(root).parts}


def test_a_second_run_skips_what_the_first_made(folder: Path) -> None:
    first = feather("compress", ".", cwd=folder)
    assert first.returncode == 0, first.stderr
    made = _files(folder)
    assert sorted(made) == ["beach-compressed.webp", "beach.jpg", "logo-compressed.webp",
                            "logo.png", "scan-compressed.webp", "scan.png"]

    again = feather("compress", ".", cwd=folder)
    assert again.returncode == 0, again.stderr  # nothing failed: nothing was to be done
    assert _files(folder) == made  # no -compressed-compressed, nothing rewritten
    assert "FAILED" not in again.stderr
    assert re.search(r"^0 files +0 failed, 3 skipped", again.stdout, re.M), again.stdout
    assert "Skipped 3 files whose output exists" in again.stderr
    assert "Left out 3 files this run would write itself" in again.stderr
    assert re.search(r"^beach\.jpg +beach-compressed\.webp \(exists\) .*skipped$",
                     again.stdout, re.M), again.stdout

    # --overwrite makes them again, from the originals only.
    (folder / "beach-compressed.webp").write_bytes(b"stale")
    forced = feather("compress", ".", "--overwrite", cwd=folder)
    assert forced.returncode == 0, forced.stderr
    assert sorted(_files(folder)) == sorted(made)
    assert _files(folder)["beach-compressed.webp"] == made["beach-compressed.webp"]
    assert re.search(r"^3 files +0 failed ", forced.stdout, re.M), forced.stdout


def test_suffix_and_out_dir_as_squoosh_cli_and_imagemin(folder: Path) -> None:
    run = feather("compress", ".", "--suffix", ".min", "-f", "webp", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert {"beach.min.webp", "logo.min.webp", "scan.min.webp"} <= set(_files(folder))
    again = feather("compress", ".", "--suffix", ".min", "-f", "webp", cwd=folder)
    assert "3 skipped" in again.stdout
    assert not any(".min.min" in n for n in _files(folder))
    for name in list(_files(folder)):
        if ".min." in name:
            (folder / name).unlink()

    # --out-dir inside the folder being compressed: its files are never inputs.
    for _ in range(2):
        run = feather("compress", ".", "--out-dir", "web", "-f", "webp", cwd=folder)
        assert run.returncode == 0, run.stderr
    assert sorted(n for n in _files(folder) if n.startswith("web/")) == [
        "web/beach.webp", "web/logo.webp", "web/scan.webp"]
    # -o is the same option; a suffix applies under it too.
    run = feather("compress", "beach.jpg", "-o", "small", "--suffix", "-800", "-f", "webp",
                  cwd=folder)
    assert run.returncode == 0, run.stderr
    assert (folder / "small" / "beach-800.webp").is_file()

    # An empty suffix beside the input writes over it only with --overwrite.
    refused = feather("compress", "scan.png", "--suffix", "", "-f", "png", cwd=folder)
    assert refused.returncode == 1
    assert "WOULD_OVERWRITE" in refused.stderr
    assert "--overwrite" in refused.stderr


# ---------------------------------------------------------------- pipes


def test_stdin_to_stdout(folder: Path) -> None:
    source = (folder / "beach.jpg").read_bytes()
    env = {**os.environ, "DATA_DIR": str(folder / "var")}
    piped = subprocess.run([*FEATHER, "compress", "-", "-q", "60"], input=source,
                           capture_output=True, cwd=folder, env=env, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    image = open_image(piped.stdout)
    assert (image.format, image.size) == ("WEBP", (320, 240))
    # The same bytes as the file-to-file run with the same options.
    run = feather("compress", "beach.jpg", "-q", "60", "-o", "files", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert (folder / "files" / "beach.webp").read_bytes() == piped.stdout

    # No `-` and a pipe on stdin means the same (imagemin < in.png > out.png); --json
    # reports on stderr, stdout holds only the image.
    bare = subprocess.run([*FEATHER, "compress", "-f", "png", "--json"], input=source,
                          capture_output=True, cwd=folder, env=env, timeout=120, check=False)
    assert bare.returncode == 0, bare.stderr
    assert open_image(bare.stdout).format == "PNG"
    report = json.loads(bare.stderr)
    assert (report["format"], report["originalBytes"]) == ("png", len(source))
    assert report["outputBytes"] == len(bare.stdout)

    broken = subprocess.run([*FEATHER, "compress", "-"], input=b"not an image",
                            capture_output=True, cwd=folder, env=env, timeout=120, check=False)
    assert broken.returncode == 1
    assert broken.stdout == b""
    assert b"INVALID_IMAGE" in broken.stderr or b"UNSUPPORTED" in broken.stderr
    mixed = feather("compress", "-", "beach.jpg", cwd=folder)
    assert mixed.returncode == 2
    assert "cannot be mixed" in mixed.stderr


# ---------------------------------------------------------------- keep the smaller


def test_keeps_the_smaller_when_the_format_was_not_asked_for(tmp_path: Path) -> None:
    # A TIFF holding a coarse JPEG: auto's pick would be nearly three times larger.
    tiff = encode(photo(800, 600, seed=1), "TIFF", compression="jpeg", quality=15)
    (tmp_path / "scan.tif").write_bytes(tiff)
    run = feather("compress", "scan.tif", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "scan-compressed.tif").read_bytes() == tiff  # the original, kept
    assert not (tmp_path / "scan-compressed.webp").exists()
    assert "scan-compressed.tif (original kept: smaller)" in run.stdout
    assert "0.0%" in run.stdout
    assert "larger" not in run.stdout

    # Asked for PNG, the file is written and its growth is marked.
    run = feather("compress", "scan.tif", "-f", "png", "-o", "asked", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    grown = (tmp_path / "asked" / "scan.png").stat().st_size
    assert grown > len(tiff)
    assert f"+{100 * (grown - len(tiff)) / len(tiff):.1f}% larger" in run.stdout
    assert "1 file grew" in run.stderr

    # A TIFF with metadata that cannot be stripped losslessly is not kept as it is.
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # Make
    with_make = encode(photo(800, 600, seed=1), "TIFF", compression="jpeg", quality=15,
                       exif=exif)
    (tmp_path / "made.tif").write_bytes(with_make)
    run = feather("compress", "made.tif", "--json", cwd=tmp_path)
    (result,) = json.loads(run.stdout)["results"]
    assert result["output"] == "made-compressed.webp"
    assert "kept" not in result
    run = feather("compress", "made.tif", "--keep-metadata", "-o", "kept", "--json",
                  cwd=tmp_path)
    (result,) = json.loads(run.stdout)["results"]
    assert (result["output"], result["kept"]) == ("kept/made.tif", "original")


# ---------------------------------------------------------------- the table


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """What the command prints to a terminal (a pty), stdout and stderr together."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([*FEATHER, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_the_table_relative_unwrapped_and_coloured_on_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path / "holiday photos from the summer of 2024" / "the second week by the sea"
    deep.mkdir(parents=True)
    for seed in range(2):
        (deep / f"a rather long file name for a photo {seed}.jpg").write_bytes(
            encode(photo(160, 120, seed=seed), "JPEG", quality=95))
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var"), "COLUMNS": "80"}
    env.pop("NO_COLOR", None)

    # Given an absolute path, the table still shows paths relative to where it runs.
    plain = feather("compress", str(tmp_path / "holiday photos from the summer of 2024"),
                    "-o", "out", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert str(tmp_path) not in plain.stdout
    assert "holiday photos from the summer of 2024/the second week by the sea/" in plain.stdout
    assert not ANSI.search(plain.stdout + plain.stderr)  # not a terminal: no colour

    shown = _on_a_terminal(["compress", str(deep), "-o", "out2", "-q", "50"], tmp_path, env)
    assert ANSI.search(shown), shown
    assert "\x1b[32m" in shown  # savings in green
    lines = [ANSI.sub("", line) for line in shown.splitlines() if line.strip()]
    table = [line for line in lines if "%" in line or line.startswith(("input", "---"))]
    assert len(table) == 6, lines
    assert max(len(line) for line in table) < 80, table  # fitted: nothing wraps
    assert any("…" in line for line in table)
    assert str(tmp_path) not in shown

    no_colour = _on_a_terminal(["compress", str(deep), "-o", "out3"], tmp_path,
                               {**env, "NO_COLOR": "1"})
    assert "2 files" in no_colour
    assert not ANSI.search(no_colour)
    assert max(len(line) for line in no_colour.splitlines()) < 80  # still fitted


def test_json_lists_skips_and_growth(folder: Path) -> None:
    feather("compress", "beach.jpg", cwd=folder)
    run = feather("compress", "beach.jpg", "scan.png", "--json", cwd=folder)
    report = json.loads(run.stdout)
    assert (report["files"], report["skipped"], report["failed"]) == (1, 1, 0)
    skipped = next(r for r in report["results"] if r["input"] == "beach.jpg")
    assert skipped["skipped"].startswith("exists")
    assert skipped["output"] == "beach-compressed.webp"
    with Image.open(io.BytesIO((folder / "scan-compressed.webp").read_bytes())) as image:
        assert image.size == (160, 120)
