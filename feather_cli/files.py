"""Which files a `feather compress` run reads, and where each output goes.

Paths given on the command line may be files (always tried: the format is told by
the bytes), folders (walked recursively; only files with an image extension are
taken, so a README beside the photos is not a failure) or globs (for shells that
did not expand them, and for ``**``). Output paths are planned up front, as
squoosh-cli and imagemin-cli name them: ``--out-dir DIR`` keeps the tree below each
folder, ``--suffix`` is appended to the name (default ``-compressed`` beside the
input, nothing under an output folder), and an existing file is never replaced
without ``--overwrite`` (``--in-place`` implies it).

Running twice is safe: files the plan would write (``photo-compressed.webp`` for
``photo.jpg``, anything under the output folder) are not taken as inputs again, and an
input whose output already exists is skipped and reported as such.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from feather_core.errors import FeatherError
from feather_core.formats import FORMATS, INPUT_NAMES, output_format
from feather_core.sniff import sniff_format

IMAGE_SUFFIXES = frozenset({f".{name}" for name in INPUT_NAMES} | {".tif", ".jfif"})
_GLOB_CHARS = set("*?[")
DEFAULT_SUFFIX = "-compressed"


@dataclass(frozen=True)
class Input:
    """One file to process, and its path relative to the root that will be mirrored."""

    path: Path
    relative: Path  # kept under --out-dir (the tree of a folder argument, the name of a file)


@dataclass(frozen=True)
class Task:
    """One planned job: read ``source``, write ``output``; remove ``source`` afterwards
    when an in-place run changed its extension. ``partial`` is the temporary file the
    output is written to before it is renamed into place."""

    source: Path
    output: Path
    display: str
    remove_source: bool = False
    partial: Path | None = None


@dataclass(frozen=True)
class Rejected:
    """An input refused before any work, with the reason a user reads."""

    display: str
    code: str
    message: str


@dataclass(frozen=True)
class Skipped:
    """An input left alone on purpose (its output exists), with the reason."""

    display: str
    output: str
    reason: str


@dataclass(frozen=True)
class Layout:
    """Where outputs go: the folder (None: beside each input), the suffix added to each
    name, and whether existing files may be replaced."""

    out_dir: Path | None = None
    suffix: str | None = None  # None: -compressed beside the input, nothing under out_dir
    overwrite: bool = False
    in_place: bool = False

    @property
    def name_suffix(self) -> str:
        if self.in_place:
            return ""
        if self.suffix is not None:
            return self.suffix
        return "" if self.out_dir is not None else DEFAULT_SUFFIX

    @property
    def replaces(self) -> bool:
        return self.overwrite or self.in_place

    def output_for(self, item: Input, extension: str) -> Path:
        if self.in_place:
            output = item.path.with_suffix("." + extension)
            # photo.JPG stays photo.JPG when the format stays JPEG
            return item.path if output.suffix.lower() == item.path.suffix.lower() else output
        name = f"{item.path.stem}{self.name_suffix}.{extension}"
        if self.out_dir is not None:
            return self.out_dir / item.relative.parent / name
        return item.path.with_name(name)


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


def shown(path: Path | str, cwd: Path | None = None) -> str:
    """A path as the summary shows it: relative to the working folder when it is inside
    it, else as given."""
    cwd = cwd or Path.cwd()
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(cwd)) or "."
    except ValueError:
        return str(path)


def predicted_extension(path: Path, asked_format: str) -> str:
    """The extension the output will most likely have (the file is renamed after the
    format ``auto`` picked, once it is known); raises FeatherError if the bytes are no image.
    """
    if asked_format != "auto":
        return output_format(asked_format).extension
    with path.open("rb") as handle:
        sniff_format(handle.read(4096))
    return FORMATS["webp"].extension  # what auto makes of most photos


# What ``auto`` may write for a client that accepts anything (the command line).
_AUTO_EXTENSIONS = frozenset({"webp", "jpg", "png"})


def _possible_outputs(item: Input, layout: Layout, asked_format: str) -> set[Path]:
    """Every file the run may write for ``item``: the asked format's; with ``auto`` any
    format it may pick, and the input's own (when the smaller output is kept)."""
    extensions: set[str]
    if asked_format == "auto":
        extensions = {*_AUTO_EXTENSIONS, item.path.suffix.lstrip(".")}
    else:
        extensions = {output_format(asked_format).extension}
    return {layout.output_for(item, ext).resolve() for ext in extensions if ext}


def _inside_output_folder(item: Input, out_root: Path | None) -> bool:
    """Whether ``item`` lies in an output folder nested in the tree it was found in
    (``feather compress . -o web``: web/ holds outputs, not inputs)."""
    if out_root is None:
        return False
    depth = len(item.relative.parts)
    tree = item.path.resolve().parents[depth - 1] if depth else item.path.resolve()
    return tree in out_root.parents and out_root in item.path.resolve().parents


@dataclass
class Plan:
    """What a run will do: the tasks, the inputs refused or skipped, and the files left
    out because the plan itself writes them (outputs of an earlier run)."""

    tasks: list[Task]
    rejected: list[Rejected]
    skipped: list[Skipped]
    outputs_left_out: list[str]


def plan_tasks(inputs: list[Input], *, asked_format: str, layout: Layout) -> Plan:
    """Give every input an output path; refuse collisions and overwriting inputs, skip
    outputs that exist (unless ``layout.replaces``) and inputs that are outputs."""
    rejected: list[Rejected] = []
    possible = {item.path: _possible_outputs(item, layout, asked_format) for item in inputs}

    # What this run (or an earlier one with the same options) writes is not an input.
    out_root = layout.out_dir.resolve() if layout.out_dir is not None else None
    outputs_of_others: set[Path] = set()
    for item in inputs:
        outputs_of_others |= possible[item.path] - {item.path.resolve()}
    left_out: list[str] = []
    kept: list[tuple[Input, str]] = []
    for item in inputs:
        key_in = item.path.resolve()
        if not layout.in_place and (key_in in outputs_of_others
                                    or _inside_output_folder(item, out_root)):
            left_out.append(shown(item.path))  # an output of this plan, from an earlier run
            continue
        try:
            extension = predicted_extension(item.path, asked_format)
        except FeatherError as exc:
            rejected.append(Rejected(shown(item.path), exc.code, exc.message))
            continue
        except OSError as exc:
            rejected.append(Rejected(shown(item.path), "READ_ERROR", exc.strerror or str(exc)))
            continue
        kept.append((item, extension))

    tasks: list[Task] = []
    skipped: list[Skipped] = []
    input_paths = {item.path.resolve() for item, _ in kept}
    claimed: dict[Path, str] = {}
    for item, extension in kept:
        display = shown(item.path)
        key_in = item.path.resolve()
        output = layout.output_for(item, extension)
        key = output.resolve()
        own = key == key_in
        if key in input_paths and not own:
            rejected.append(Rejected(display, "WOULD_OVERWRITE",
                                     f"the output {shown(output)} is an input file; "
                                     "use --in-place to replace inputs"))
            continue
        if own and not layout.replaces:
            rejected.append(Rejected(display, "WOULD_OVERWRITE",
                                     f"the output {shown(output)} is the input itself; "
                                     "use --overwrite or --in-place to replace it"))
            continue
        if key_in in possible[item.path] and not layout.replaces:
            # auto may keep the input's own format, and then its name.
            rejected.append(Rejected(display, "WOULD_OVERWRITE",
                                     f"the output may be {display} itself (auto keeps the "
                                     "smaller format); use --overwrite or --in-place to "
                                     "replace it"))
            continue
        if key in claimed:
            rejected.append(Rejected(display, "OUTPUT_COLLISION",
                                     f"{claimed[key]} already writes {shown(output)}"))
            continue
        existing = sorted(p for p in possible[item.path] if p.is_file() and p != key_in)
        if existing and not layout.replaces:
            skipped.append(Skipped(display, shown(existing[0]),
                                   "exists (from an earlier run); --overwrite replaces it"))
            continue
        claimed[key] = display
        partial = output.parent / f".{output.name}.{os.getpid()}.feather-part"
        tasks.append(Task(item.path, output, display,
                          remove_source=layout.in_place, partial=partial))
    return Plan(tasks, rejected, skipped, left_out)
