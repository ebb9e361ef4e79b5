"""The results: a printed table, docs/bench/results.md, docs/bench/chart.png, README's section."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.images import ROOT

README = ROOT / "README.md"
MARKER = "<!-- section: bench -->"


@dataclass
class Results:
    """Everything one run measured, ready to print."""

    origin: str
    photos: int
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    goals: list[tuple[str, str, bool]] = field(default_factory=list)
    chart: list[tuple[str, float, float]] = field(default_factory=list)  # job, feather, sharp
    # Markdown lines of the compression table (bench/compression.py), empty when skipped.
    compression: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"Photos: {self.photos} from `{self.origin}`. CPU is user + system time "
                 "(server CPU read from /proc for the 2 workers), so a busy machine slows "
                 "the wall clock but not the ratios.", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", "| goal | measured | holds |", "|---|---|---|"]
        lines += [f"| {g} | {m} | {'yes' if ok else '**no**'} |" for g, m, ok in self.goals]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        if self.compression:
            lines += ["", "Compression: bytes and SSIMULACRA2 of each tool's output on the same "
                      "images (KB out, out/in, out/Feather auto, score mean / min):", ""]
            lines += self.compression
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.header)]
        out = ["  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in self.rows]
        out += [""] + [f"[{'ok' if ok else 'FAIL'}] {g}: {m}" for g, m, ok in self.goals]
        out += [f"- {n}" for n in self.notes]
        if self.compression:
            out += ["", "Compression table:"] + self.compression
        return "\n".join(out)


def write(results: Results, out_dir: Path, readme: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text("# Bench results (`make bench`)\n\n" + results.markdown())
    chart(results.chart, out_dir / "chart.png")
    if readme:
        update_readme(results, out_dir)


def update_readme(results: Results, out_dir: Path) -> None:
    """Replace the text under README's bench marker, up to the next heading or marker."""
    rel = out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir
    body = ("\n`make bench` runs Feather and a peer built on sharp (libvips, `bench/sharp-peer`) "
            "side by side on the same jobs; `BENCH_IMAGES=path` picks the photos (a corpus "
            "directory, a directory of JPEGs or a list file), else `../shared/corpus` when "
            "present, else generated photos. The peer uses the same settings (quality, 4:2:0, "
            "effort, Lanczos 3, never enlarging, one libvips thread per worker). Feather's "
            "path: JPEG decoded at the largest DCT scale (1/2, 1/4, 1/8) still at least the "
            "target, the output size computed from the full upright size, one Lanczos-3 "
            "resample (Pillow's weights, run by the vectorised filter of "
            "`feather_core/_resample.c`, box-reduced first for reductions over 3x), then the "
            "encoder, in a job process of the worker's pool, which keeps freed buffers for "
            "reuse (`feather_core/allocator.py`); the process model's cost is measured on "
            "its own by calling job 1 here and in a job process, side by side. "
            "`targetMB` starts from a JPEG input's own quality and size (or the first "
            "encode) and bisects in log-size space (`feather_core/target_size.py`); the plain "
            "binary search it is compared with decodes once and bisects quality over 10..95. "
            "The peer maps `effort` to the same libaom speed as Feather for AVIF. This is "
            "the last run's output:\n\n"
            + results.markdown() + f"\n![Feather CPU relative to sharp]({rel}/chart.png)\n\n")
    text = README.read_text()
    if MARKER not in text:
        return
    start = text.index(MARKER) + len(MARKER)
    rest = text[start:]
    following = re.search(r"^(## |<!-- section: )", rest, flags=re.MULTILINE)
    end = start + (following.start() if following else len(rest))
    README.write_text(text[:start] + "\n" + body + text[end:].lstrip("\n"))


def chart(bars: list[tuple[str, float, float]], path: Path) -> None:
    """Per job, Feather's server CPU per request relative to sharp's (sharp = 1.0)."""
    width, row, left, unit = 900, 44, 330, 300
    height = 70 + row * len(bars) + 20
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    draw.text((10, 10), "Feather server CPU per request / sharp's (same jobs, same run); "
              "left of the line is cheaper", fill="black", font=font)
    draw.line((left + unit, 40, left + unit, height - 10), fill=(200, 60, 60), width=2)
    draw.text((left + unit + 4, 40), "sharp = 1.0", fill=(200, 60, 60), font=font)
    for index, (job, feather, sharp) in enumerate(bars):
        y = 64 + index * row
        ratio = feather / sharp if sharp else 0.0
        draw.text((10, y + 4), job.replace("→", "->")[:44], fill="black", font=font)
        end = left + int(min(ratio, 1.8) * unit)
        draw.rectangle((left, y, end, y + 24), fill=(40, 110, 200))
        draw.text((end + 6, y + 4), f"{ratio:.2f}x ({feather:.0f} / {sharp:.0f} ms)",
                  fill="black", font=font)
    image.save(path, "PNG", optimize=True)
