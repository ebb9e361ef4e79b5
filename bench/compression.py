"""The compression table: bytes and SSIMULACRA2 of Feather beside the tools people use.

Same images for every tool: photos, screenshots and graphics from the shared corpus
(``compression_images.txt``), or generated ones when the corpus is absent. Tools: Feather
in-process (``auto``; ``auto`` with ``quality=auto``; ``png``), sharp's defaults (``webp()``
and ``png()``, through the peer's node_modules), ``pngquant --quality=65-80``,
``oxipng -o 2`` (pyoxipng) and ``cwebp`` with its defaults. Every output is decoded and
scored against the input's pixels with ``feather_core.perceptual`` (libjxl's SSIMULACRA2).
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from bench.images import DEFAULT_CORPUS, HERE, photo
from feather_core import compress, perceptual
from feather_core.options import CompressOptions

LIST = HERE / "compression_images.txt"
KINDS = ("photo", "screenshot", "graphic")
PNGQUANT_QUALITY = "65-80"


@dataclass(frozen=True)
class Sample:
    """One input of the table."""

    kind: str
    name: str
    data: bytes


@dataclass
class Outcome:
    """A tool's totals over one kind of image."""

    bytes_in: int = 0
    bytes_out: int = 0
    scores: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    missing: int = 0  # images the tool gave nothing for (pngquant below its minimum)


def load_samples(corpus: Path | None = None) -> tuple[str, list[Sample]]:
    """The table's images: the corpus list when the corpus is there, else generated ones."""
    corpus = corpus or DEFAULT_CORPUS
    if (corpus / "MANIFEST.md").is_file():
        samples = []
        for line in LIST.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            kind, rel = line.split(maxsplit=1)
            path = HERE.parent / rel[5:] if rel.startswith("repo:") else corpus / rel
            data = path.read_bytes()
            if path.suffix.lower() == ".svg":
                import cairosvg  # a drawing rendered as a browser would

                data = cairosvg.svg2png(bytestring=data, output_width=800)
            samples.append(Sample(kind, path.name, data))
        return "the shared corpus (bench/compression_images.txt)", samples
    return "generated images", generated()


def generated() -> list[Sample]:
    """Photo-like, screenshot-like and drawn images, for machines without the corpus."""
    out = [Sample("photo", f"photo-{i}.png", _png(photo(768, 512, seed=i))) for i in range(4)]
    out += [Sample("screenshot", f"screen-{i}.png", _png(_screen(1280, 800, i))) for i in range(3)]
    out += [Sample("graphic", f"chart-{i}.png", _png(_chart(900, 600, i))) for i in range(3)]
    return out


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _screen(width: int, height: int, seed: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (246, 247, 249))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 56), fill=(30 + seed * 20, 50, 100))
    draw.rectangle((0, 56, 240, height), fill=(236, 238, 242))
    for row in range(14):
        top = 80 + row * 48
        draw.rectangle((264, top, width - 24, top + 38), fill="white", outline=(214, 218, 224))
        for word in range(8):
            left = 280 + word * 118
            draw.text((left, top + 12), f"label {row}.{word}", fill=(40, 40, 48))
    image.paste(photo(320, 200, seed=seed).resize((240, 150)), (width - 280, 90))
    return image


def _chart(width: int, height: int, seed: int) -> Image.Image:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colours = [(230, 80, 60, 255), (60, 140, 220, 255), (90, 180, 90, 255), (250, 190, 40, 255)]
    for i in range(12):
        h = 40 + (i * 37 + seed * 53) % (height - 120)
        draw.rectangle((40 + i * 70, height - 40 - h, 90 + i * 70, height - 40),
                       fill=colours[(i + seed) % 4])
    draw.line((30, height - 40, width - 20, height - 40), fill=(20, 20, 20, 255), width=3)
    draw.ellipse((width - 220, 30, width - 40, 210), fill=(60, 60, 160, 200))
    return image


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


Tool = Callable[[Sample, Path], bytes | None]


def _feather(options: CompressOptions) -> Tool:
    def run(sample: Sample, _: Path) -> bytes:
        return compress(sample.data, options).data
    return run


def _as_png(sample: Sample, work: Path) -> Path:
    path = work / "in.png"
    if sample.data[:8] == b"\x89PNG\r\n\x1a\n":
        path.write_bytes(sample.data)
    else:
        _decoded(sample.data).save(path, "PNG")
    return path


def _pngquant(sample: Sample, work: Path) -> bytes | None:
    out = work / "pngquant.png"
    done = subprocess.run(["pngquant", f"--quality={PNGQUANT_QUALITY}", "--force", "--output",
                           str(out), "--", str(_as_png(sample, work))], capture_output=True)
    return out.read_bytes() if done.returncode == 0 else None  # 99: below its minimum


def _oxipng(sample: Sample, work: Path) -> bytes:
    import oxipng

    return bytes(oxipng.optimize_from_memory(_as_png(sample, work).read_bytes(), level=2))


def _cwebp(sample: Sample, work: Path) -> bytes:
    out = work / "out.webp"
    subprocess.run(["cwebp", "-quiet", str(_as_png(sample, work)), "-o", str(out)], check=True)
    return out.read_bytes()


def _sharp(method: str) -> Tool:
    script = HERE / "sharp-peer" / "defaults.js"

    def run(sample: Sample, work: Path) -> bytes:
        out = work / f"sharp.{method}"
        subprocess.run(["node", str(script), method, str(_as_png(sample, work)), str(out)],
                       check=True, cwd=script.parent)
        return out.read_bytes()
    return run


TOOLS: tuple[tuple[str, Tool], ...] = (
    ("Feather auto", _feather(CompressOptions())),
    ("Feather auto, quality=auto", _feather(CompressOptions(quality_level="good"))),
    ("Feather png", _feather(CompressOptions(output_format="png"))),
    ("sharp webp() defaults", _sharp("webp")),
    ("sharp png() defaults", _sharp("png")),
    (f"pngquant --quality={PNGQUANT_QUALITY}", _pngquant),
    ("oxipng -o 2", _oxipng),
    ("cwebp defaults", _cwebp),
)


def available_tools() -> tuple[tuple[str, Tool], ...]:
    """The tools this machine has (the Makefile's bench target installs them)."""
    have = []
    for name, tool in TOOLS:
        if name.startswith("pngquant") and not shutil.which("pngquant"):
            continue
        if name.startswith("cwebp") and not shutil.which("cwebp"):
            continue
        if name.startswith("sharp") and not (HERE / "sharp-peer" / "node_modules").is_dir():
            continue
        if name.startswith("oxipng"):
            try:
                import oxipng  # noqa: F401
            except ImportError:
                continue
        have.append((name, tool))
    return tuple(have)


def measure(samples: list[Sample]) -> dict[str, dict[str, Outcome]]:
    """Per tool, per kind: bytes in and out, scores, CPU (Feather's in-process)."""
    results: dict[str, dict[str, Outcome]] = {}
    tools = available_tools()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for sample in samples:
            reference = perceptual.Reference(_decoded(sample.data))
            for name, tool in tools:
                outcome = results.setdefault(name, {}).setdefault(sample.kind, Outcome())
                outcome.bytes_in += len(sample.data)
                started = time.process_time()
                output = tool(sample, work)
                outcome.cpu_s += time.process_time() - started
                if output is None:
                    outcome.missing += 1
                    outcome.bytes_out += len(sample.data)
                    continue
                outcome.bytes_out += len(output)
                candidate = _decoded(output)
                if reference.alpha and candidate.mode != "RGBA":
                    candidate = candidate.convert("RGBA")
                outcome.scores.append(reference.score(candidate))
    return results


def table(results: dict[str, dict[str, Outcome]], counts: dict[str, int]) -> list[str]:
    """Markdown rows: per tool, per kind, KB out, ratio to input and to Feather auto, scores."""
    header = ["tool"] + [f"{kind}s ({counts.get(kind, 0)}): KB, ×input, ×Feather auto, "
                         "SSIMULACRA2 mean / min" for kind in KINDS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = results.get("Feather auto", {})
    for name, per_kind in results.items():
        cells = [name]
        for kind in KINDS:
            outcome = per_kind.get(kind)
            if outcome is None or not outcome.bytes_in:
                cells.append("")
                continue
            ours = base.get(kind)
            vs = f"{outcome.bytes_out / ours.bytes_out:.2f}" if ours and ours.bytes_out else ""
            scores = (f"{statistics.fmean(outcome.scores):.1f} / {min(outcome.scores):.1f}"
                      if outcome.scores else "")
            note = f" ({outcome.missing} kept: below minimum)" if outcome.missing else ""
            ratio = outcome.bytes_out / outcome.bytes_in
            cells.append(f"{outcome.bytes_out / 1000:.0f}, {ratio:.2f}, {vs}, {scores}{note}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run(corpus: Path | None = None) -> tuple[str, list[str]]:
    """Measure and return (origin, markdown lines of the table and its notes)."""
    origin, samples = load_samples(corpus)
    results = measure(samples)
    counts = {kind: sum(1 for s in samples if s.kind == kind) for kind in KINDS}
    lines = table(results, counts)
    cpu = {name: sum(o.cpu_s for o in per.values()) for name, per in results.items()}
    if "Feather auto" in cpu:
        lines += ["", f"Images: {origin}. In-process CPU for all images: "
                  + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items()
                              if name.startswith("Feather")) + "."]
    return origin, lines
