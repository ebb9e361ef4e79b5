"""Which files a `feather compress` run reads, and where each output goes.

Paths given on the command line may be files (always tried: the format is told by
the bytes), folders (walked recursively; only files with an image extension are
taken, so a README beside the photos is not a failure) or globs (for shells that
did not expand them, and for ``**``). Output paths are planned up front so that no
input is ever overwritten unless ``--in-place`` was asked, and so that two inputs
never write the same output.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from feather_core.errors import FeatherError
from feather_core.formats import ALIASES, FORMATS, INPUT_NAMES, choose_auto_format, output_format
from feather_core.sniff import sniff_format

IMAGE_SUFFIXES = frozenset({f".{name}" for name in INPUT_NAMES} | {".tif", ".jfif"})
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Input:
    """One file to process, and its path relative to the root that will be mirrored."""

    path: Path
    relative: Path  # kept under -o DIR (the tree of a folder argument, the name of a file)


@dataclass(frozen=True)
class Task:
    """One planned job: read ``source``, write ``output``; remove ``source`` afterwards
    when an in-place run changed its extension."""

    source: Path
    output: Path
    display: str
    remove_source: bool = False


@dataclass(frozen=True)
class Rejected:
    """An input refused before any work, with the reason a user reads."""

    display: str
    code: str
    message: str


def collect_inputs(arguments: tuple[str, ...]) -> tuple[list[Input], list[Rejected]]:
    """Expand files, folders and globs into inputs (each file once, in a stable order)."""
    found: list[Input] = []
    rejected: list[Rejected] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(Input(path, relative))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for file in _walk(path):
                add(file, file.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif _GLOB_CHARS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            root = _glob_root(argument)
            files = [Path(m) for m in matches if Path(m).is_file()]
            for folder in (Path(m) for m in matches if Path(m).is_dir()):
                files.extend(_walk(folder))
            if not files:
                rejected.append(Rejected(argument, "NOT_FOUND", "no file matches this pattern"))
            for file in files:
                add(file, _relative_to(file, root))
        else:
            rejected.append(Rejected(argument, "NOT_FOUND", "no such file or folder"))
    return found, rejected


def _walk(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(Path(dirpath) / name)
    return files


def _glob_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: the tree below it is kept."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _relative_to(file: Path, root: Path) -> Path:
    try:
        return file.relative_to(root)
    except ValueError:
        return Path(file.name)


def predicted_extension(path: Path, asked_format: str) -> str:
    """The extension the output will have; raises FeatherError if the bytes are no image."""
    if asked_format != "auto":
        return output_format(asked_format).extension
    with path.open("rb") as handle:
        head = handle.read(4096)
    source = sniff_format(head)
    return FORMATS[choose_auto_format(ALIASES.get(source, source), False, False)].extension


def plan_tasks(
    inputs: list[Input],
    *,
    asked_format: str,
    out_dir: Path | None,
    in_place: bool,
) -> tuple[list[Task], list[Rejected]]:
    """Give every input an output path; refuse collisions and overwriting inputs."""
    tasks: list[Task] = []
    rejected: list[Rejected] = []
    input_paths = {i.path.resolve() for i in inputs}
    claimed: dict[Path, str] = {}
    for item in inputs:
        display = str(item.path)
        try:
            extension = predicted_extension(item.path, asked_format)
        except FeatherError as exc:
            rejected.append(Rejected(display, exc.code, exc.message))
            continue
        except OSError as exc:
            rejected.append(Rejected(display, "READ_ERROR", exc.strerror or str(exc)))
            continue
        if in_place:
            output = item.path.with_suffix("." + extension)
            if output.suffix.lower() == item.path.suffix.lower():
                output = item.path  # photo.JPG stays photo.JPG
        elif out_dir is not None:
            output = out_dir / item.relative.with_suffix("." + extension)
        else:
            output = item.path.with_name(f"{item.path.stem}-compressed.{extension}")
        key = output.resolve()
        own = key == item.path.resolve()
        if key in input_paths and not (in_place and own):
            rejected.append(Rejected(display, "WOULD_OVERWRITE",
                                     f"the output {output} is an input file; "
                                     "use --in-place to replace inputs"))
            continue
        if key in claimed:
            rejected.append(Rejected(display, "OUTPUT_COLLISION",
                                     f"{claimed[key]} already writes {output}"))
            continue
        claimed[key] = display
        tasks.append(Task(item.path, output, display, remove_source=in_place and not own))
    return tasks, rejected
