"""Decode every file of a folder with Feather and with a reference decoder, and compare.

    python -m tools.differential FOLDER [--known tools/known_differences.txt] [--jobs 2]

Feather's side is what a user gets: ``feather_core.compress`` to lossless PNG (upright,
8 bits a sample, CMYK and Lab turned to sRGB). The reference is another decoder:

============  ===================================================================
input         reference
============  ===================================================================
HEIC, HEIF    pillow-heif's own decode (``open_heif``), transforms applied
BMP           Pillow (libvips has no BMP reader)
the rest      libvips through pyvips, then ``autorot`` (JPEG, PNG, GIF, WebP,
              TIFF, AVIF through libheif and dav1d, SVG through librsvg)
============  ===================================================================

Both images are compared by dimensions, orientation (a transposed match is reported as
such), transparency, pixels (mean absolute difference of the alpha-premultiplied
samples, 0-255) and, for GIF and WebP, frame count. A file that one side refuses and
the other reads is a difference too. Files listed in the known-differences file (path
pattern, kind of difference, why) are reported as explained; the check fails on any
other difference.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from feather_core import CompressOptions, Limits, compress  # noqa: E402
from feather_core.errors import FeatherError  # noqa: E402
from feather_core.inspect import inspect_image  # noqa: E402
from feather_core.sniff import sniff_format  # noqa: E402

KNOWN_DIFFERENCES = ROOT / "tools" / "known_differences.txt"
# Mean absolute difference (0-255, premultiplied RGBA) under which two decodes are the
# same picture. Two AV1/HEVC decoders' YUV->RGB paths or 16->8 bit roundings differ by
# about 1; a wrong orientation, colour space or alpha handling by 20 and more.
PIXEL_TOLERANCE = 4.0
SKIPPED_SUFFIXES = {".md", ".txt", ".json", ".js", ".html", ".icc", ".icm", ".py", ".sh",
                    ".pdf", ".xml", ".css"}
MAX_PIXELS = Limits().max_pixels
KINDS = ("dimensions", "orientation", "alpha", "pixels", "frames", "feather-refuses",
         "reference-refuses", "error")


@dataclass(frozen=True)
class Side:
    """One decoder's view of a file: an upright 8-bit image, or why there is none."""

    image: Image.Image | None = None
    frames: int | None = None
    error: str = ""
    too_large: bool = False


@dataclass(frozen=True)
class Comparison:
    """What the two decoders made of one file."""

    path: str
    format: str
    reference: str
    differences: tuple[tuple[str, str], ...] = ()  # (kind, what was seen)
    explained: tuple[str, ...] = ()  # why, per difference, from the known list
    mean_diff: float | None = None
    seconds: float = 0.0

    @property
    def unexplained(self) -> tuple[tuple[str, str], ...]:
        return tuple(d for d, why in zip(self.differences, self.explained, strict=True)
                     if not why)


@dataclass(frozen=True)
class Known:
    """One line of the known-differences list."""

    pattern: str
    kind: str
    why: str


@dataclass
class Report:
    """Every comparison of a run, and the figures a person reads first."""

    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.unexplained]

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for c in self.comparisons:
            if not c.differences:
                counts["same"] += 1
            elif c.unexplained:
                counts["differ, unexplained"] += 1
            else:
                counts["differ, explained"] += 1
        return counts


def load_known(path: Path = KNOWN_DIFFERENCES) -> list[Known]:
    """The known differences: ``pattern<TAB>kind<TAB>why`` lines, ``#`` comments."""
    known = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in KINDS:
            raise ValueError(f"{path}:{number}: expected pattern, kind, why separated by tabs")
        known.append(Known(parts[0], parts[1], parts[2]))
    return known


def feather_side(data: bytes) -> Side:
    """The upright image Feather outputs as lossless PNG, and its frame count."""
    try:
        info = inspect_image(data)
        result = compress(data, CompressOptions(output_format="png", mode="preview"),
                          Limits(timeout=120))
    except FeatherError as exc:
        return Side(error=f"{exc.code}: {exc.message}", too_large=exc.code == "TOO_MANY_PIXELS")
    image = Image.open(io.BytesIO(result.data))
    try:
        image.load()
    except OSError:
        # Returned as it came in (re-encoding would not shrink it), with a cut-off chunk
        # after the pixels; Feather read the pixels whole, so read them the same way.
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            image = Image.open(io.BytesIO(result.data))
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    return Side(image=image, frames=info.frames)


def reference_name(fmt: str) -> str:
    """Which decoder is the reference for an input format."""
    if fmt in ("heic", "heif"):
        return "pillow-heif"
    if fmt == "bmp":
        return "Pillow"
    return "libvips"


def reference_side(data: bytes, fmt: str) -> Side:
    """The reference decoder's upright 8-bit image of ``data``."""
    try:
        if fmt in ("heic", "heif"):
            return _pillow_heif(data)
        if fmt == "bmp":
            image = Image.open(io.BytesIO(data), formats=["BMP"])
            if image.width * image.height > MAX_PIXELS:
                return Side(error="too many pixels", too_large=True)
            image.load()
            return Side(image=image, frames=1)
        return _libvips(data, fmt)
    except Exception as exc:  # noqa: BLE001 - any failure of the reference is a result
        return Side(error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
                    if str(exc).strip() else type(exc).__name__)


def _pillow_heif(data: bytes) -> Side:
    import pillow_heif

    heif = pillow_heif.open_heif(data)
    if heif.size[0] * heif.size[1] > MAX_PIXELS:
        return Side(error="too many pixels", too_large=True)
    image = heif.to_pillow()
    return Side(image=image, frames=1)


def _libvips(data: bytes, fmt: str) -> Side:
    import pyvips

    # SVG's absolute units (cm, pt...) at 96 dpi, CSS's pixel, as cairosvg and browsers
    # size them. libvips then scales its output by dpi/72 again, hence the 3/4.
    options: dict[str, object] = {"dpi": 96, "scale": 0.75} if fmt == "svg" else {}
    # Truncated data is refused, as Feather refuses it, rather than padded with grey.
    image = pyvips.Image.new_from_buffer(data, "", fail_on="truncated", **options)
    pages = image.get("n-pages") if "n-pages" in image.get_fields() else 1
    if image.width * image.height > MAX_PIXELS:
        return Side(error="too many pixels", too_large=True)
    image = image.autorot()
    interpretation = image.interpretation
    if interpretation == "cmyk":
        image = image.icc_transform("srgb", embedded=True)
    elif interpretation in ("lab", "labs", "labq", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv"):
        image = image.colourspace("srgb")
    elif interpretation in ("rgb16", "grey16"):
        image = image.colourspace("srgb" if interpretation == "rgb16" else "b-w")
    elif image.format not in ("uchar", "char"):
        image = image.cast("uchar") if image.max() <= 255 else (image >> 8).cast("uchar")
    if image.format != "uchar":
        image = image.cast("uchar")
    # numpy() drops axes of length 1 (a 1-pixel row or column): shape it back.
    array = np.asarray(image.numpy(), dtype=np.uint8).reshape(
        image.height, image.width, image.bands)[:, :, :4]
    bands = array.shape[2]
    if bands == 1:
        array = array[:, :, 0]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands]
    return Side(image=Image.fromarray(np.ascontiguousarray(array), mode),
                frames=int(pages) if fmt in ("gif", "webp") else None)


def _with_transparency(image: Image.Image) -> Image.Image:
    # A palette or colour-keyed (tRNS) image keeps its transparency in ``info``.
    if image.mode in ("P", "PA") or "transparency" in image.info:
        return image.convert("RGBA")
    return image


def _premultiplied(image: Image.Image) -> np.ndarray:
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
    alpha = rgba[:, :, 3:4] / 255.0
    return np.concatenate([rgba[:, :, :3] * alpha, rgba[:, :, 3:4]], axis=2)


def _has_transparency(image: Image.Image) -> bool:
    if "A" not in image.getbands():
        return False
    low, _high = image.getchannel("A").getextrema()  # type: ignore[misc]
    return bool(low < 255)


_TRANSPOSES = {
    "mirrored left-right": Image.Transpose.FLIP_LEFT_RIGHT,
    "upside down": Image.Transpose.ROTATE_180,
    "mirrored top-bottom": Image.Transpose.FLIP_TOP_BOTTOM,
    "transposed": Image.Transpose.TRANSPOSE,
    "turned a quarter counter-clockwise": Image.Transpose.ROTATE_90,
    "turned a quarter clockwise": Image.Transpose.ROTATE_270,
    "transversed": Image.Transpose.TRANSVERSE,
}


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-size images, premultiplied RGBA, 0-255."""
    if a.size != b.size:
        raise ValueError(f"sizes differ: {a.size} and {b.size}")
    return float(np.mean(np.abs(_premultiplied(a) - _premultiplied(b))))


def compare_sides(feather: Side, reference: Side, fmt: str) -> tuple[
        list[tuple[str, str]], float | None]:
    """The differences between two decodes of one file, and their pixel difference."""
    if feather.image is None or reference.image is None:
        if feather.image is None and reference.image is None:
            return [], None  # both refuse: nothing to compare
        if feather.image is None:
            if feather.too_large:
                return [], None  # the pixel budget is Feather's policy, not a decoding fault
            return [("feather-refuses", feather.error)], None
        if reference.too_large:
            return [], None
        return [("reference-refuses", reference.error)], None
    ours, theirs = _with_transparency(feather.image), _with_transparency(reference.image)
    differences: list[tuple[str, str]] = []
    if fmt in ("gif", "webp") and feather.frames and reference.frames \
            and feather.frames != reference.frames:
        differences.append(("frames", f"{feather.frames} frames, reference {reference.frames}"))
    if _has_transparency(ours) != _has_transparency(theirs):
        seen = "transparent, reference opaque" if _has_transparency(ours) \
            else "opaque, reference transparent"
        differences.append(("alpha", seen))
    diff: float | None = None
    if ours.size == theirs.size:
        diff = mean_difference(ours, theirs)
    if diff is not None and diff <= PIXEL_TOLERANCE:
        return differences, diff
    for name, op in _TRANSPOSES.items():
        turned = ours.transpose(op)
        if turned.size == theirs.size and mean_difference(turned, theirs) <= PIXEL_TOLERANCE:
            differences.append(("orientation", f"{name} against the reference"))
            return differences, diff
    if ours.size != theirs.size:
        differences.append(("dimensions", "{}x{}, reference {}x{}".format(*ours.size,
                                                                          *theirs.size)))
    else:
        differences.append(("pixels", f"mean difference {diff:.1f} of 255"))
    return differences, diff


def compare_file(path: Path, root: Path, known: Sequence[Known] = ()) -> Comparison:
    """Decode one file both ways and compare; differences matched against ``known``."""
    started = time.monotonic()
    relative = path.relative_to(root).as_posix()
    data = path.read_bytes()
    try:
        fmt = sniff_format(data)
    except FeatherError:
        # Not an image format Feather reads: refusing it is policy, not a decoding fault.
        return Comparison(relative, "-", "-", seconds=time.monotonic() - started)
    reference = reference_name(fmt)
    try:
        differences, diff = compare_sides(feather_side(data), reference_side(data, fmt), fmt)
    except Exception as exc:  # noqa: BLE001 - one file that breaks the check must not end the run
        differences, diff = [("error", f"{type(exc).__name__}: {exc}"[:120])], None
    explained = tuple(_explain(relative, kind, known) for kind, _ in differences)
    return Comparison(relative, fmt, reference, tuple(differences), explained, diff,
                      time.monotonic() - started)


def _explain(relative: str, kind: str, known: Iterable[Known]) -> str:
    for entry in known:
        if entry.kind == kind and fnmatch.fnmatchcase(relative, entry.pattern):
            return entry.why
    return ""


def image_files(folder: Path, subdirs: Sequence[str] = ()) -> list[Path]:
    """The files of ``folder`` (or of its ``subdirs``) that may be images."""
    roots = [folder / s for s in subdirs if (folder / s).is_dir()] or [folder]
    return sorted(p for root in roots for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() not in SKIPPED_SUFFIXES
                  and not p.name.startswith("."))


_Job = tuple[Path, Path, list[Known]]


def _compare_job(args: _Job) -> Comparison:
    return compare_file(*args)


def run(folder: Path, files: Sequence[Path], known: Sequence[Known], jobs: int = 1,
        progress: bool = False) -> Report:
    """Compare every file; with ``jobs`` > 1, in that many processes."""
    work = [(path, folder, list(known)) for path in files]
    comparisons: list[Comparison] = []
    with ProcessPoolExecutor(jobs) if jobs > 1 else _InProcess() as pool:
        for comparison in pool.map(_compare_job, work):
            comparisons.append(comparison)
            if progress and len(comparisons) % 50 == 0:
                print(f"  {len(comparisons)}/{len(work)} compared", file=sys.stderr, flush=True)
    return Report(comparisons)


class _InProcess:
    """The part of an executor ``run`` uses, without processes (for tests and debugging)."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[[_Job], Comparison], items: Iterable[_Job]) -> Iterator[Comparison]:
        return map(fn, items)


def print_report(report: Report, out: io.TextIOBase | None = None, verbose: bool = False) -> None:
    """The figures, then a table of every difference (unexplained ones first)."""
    write = (out or sys.stdout).write
    counts = report.counts()
    by_format = Counter(c.format for c in report.comparisons)
    write(f"differential check: {len(report.comparisons)} files "
          f"({', '.join(f'{n} {f}' for f, n in sorted(by_format.items()))})\n")
    for label in ("same", "differ, explained", "differ, unexplained"):
        write(f"  {label:<22} {counts.get(label, 0)}\n")
    kinds = Counter(kind for c in report.comparisons for kind, _ in c.differences)
    if kinds:
        write("  differences by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
              + "\n")
    rows = sorted((c for c in report.comparisons if c.differences),
                  key=lambda c: (not c.unexplained, c.path))
    if rows:
        write(f"\n{'file':<60} {'ref':<11} {'kind':<18} {'seen':<44} why\n")
    for c in rows:
        if not c.unexplained and not verbose:
            continue
        for (kind, seen), why in zip(c.differences, c.explained, strict=True):
            write(f"{c.path[:60]:<60} {c.reference:<11} {kind:<18} {seen[:44]:<44} "
                  f"{why or 'UNEXPLAINED'}\n")
    explained = counts.get("differ, explained", 0)
    if explained and not verbose:
        write(f"({explained} explained differences not listed; --verbose lists them)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--subdirs", nargs="*", default=[])
    parser.add_argument("--known", type=Path, default=KNOWN_DIFFERENCES)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="list explained differences too")
    args = parser.parse_args(argv)
    files = image_files(args.folder, args.subdirs)
    report = run(args.folder, files, load_known(args.known), args.jobs, progress=True)
    print_report(report, verbose=args.verbose)
    ok = not report.unexplained
    print("differential check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
