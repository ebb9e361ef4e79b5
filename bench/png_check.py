"""Feather's PNG beside pngquant and oxipng: bytes and SSIMULACRA2 on the same images.

Standalone (not part of ``make bench``)::

    .venv/bin/python bench/png_check.py IMAGE_OR_DIR ... [--quality 80]

For every PNG it prints: the input's bytes; ``oxipng -o 2`` of the input (pyoxipng,
level 2); ``pngquant --quality=65-80`` (Debian's ``pngquant``) and its SSIMULACRA2;
Feather's PNG at ``--quality`` (default 80) with its score and CPU seconds; Feather's
lossless PNG (quality 100). Scores compare the decoded output with the input; images
with alpha are scored over a dark and a light background and the lower score kept,
as libjxl's ``ssimulacra2`` tool does
(``feather_core.perceptual``, which matches that tool). Medians of the ratios close the table.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import oxipng
from PIL import Image

from feather_core import CompressOptions, compress
from feather_core.perceptual import ssimulacra2 as score


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pngquant(data: bytes, quality: int) -> bytes | None:
    """``pngquant --quality=(q-15)-q`` of ``data``, or None when it keeps the file as is."""
    done = subprocess.run(["pngquant", f"--quality={max(0, quality - 15)}-{quality}", "-"],
                          input=data, capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def check(path: Path, quality: int) -> dict[str, float | str | None]:
    data = path.read_bytes()
    reference = _decode(data)
    row: dict[str, float | str | None] = {"image": path.name, "input": len(data)}
    row["oxipng"] = len(oxipng.optimize_from_memory(data, level=2))
    quantised = pngquant(data, quality)
    row["pngquant"] = len(quantised) if quantised else None
    row["pngquant_score"] = score(reference, _decode(quantised)) if quantised else None
    start = time.process_time()
    ours = compress(data, CompressOptions(output_format="png", quality=quality)).data
    row["cpu"] = time.process_time() - start
    row["feather"] = len(ours)
    row["feather_score"] = score(reference, _decode(ours))
    row["lossless"] = len(compress(data, CompressOptions(output_format="png",
                                                         quality=100)).data)
    return row


def _images(arguments: list[str]) -> list[Path]:
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        paths.extend(sorted(path.glob("*.png")) if path.is_dir() else [path])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="PNG files or folders of them")
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    if shutil.which("pngquant") is None:
        sys.exit("pngquant is missing: apt-get install pngquant")
    header = ("image", "input", "oxipng", "lossless", "pngquant", "score", "feather", "score",
              "bytes/pq", "Δscore", "cpu s")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    ratios, deltas, lossless = [], [], []
    for path in _images(args.images):
        row = check(path, args.quality)
        pq, pq_score = row["pngquant"], row["pngquant_score"]
        ours, our_score = row["feather"], row["feather_score"]
        assert isinstance(ours, int)
        assert isinstance(our_score, float)
        lossless.append(float(row["lossless"]) / float(row["oxipng"] or 1))  # type: ignore[arg-type]
        if isinstance(pq, int) and isinstance(pq_score, float):
            ratios.append(ours / pq)
            deltas.append(our_score - pq_score)
            versus = f"{ours / pq:.2f} | {our_score - pq_score:+.1f}"
            pq_text = f"{pq} | {pq_score:.1f}"
        else:
            versus, pq_text = "- | -", "kept | -"
        print(f"| {row['image']} | {row['input']} | {row['oxipng']} | {row['lossless']} | "
              f"{pq_text} | {ours} | {our_score:.1f} | {versus} | {row['cpu']:.2f} |",
              flush=True)
    if ratios:
        print(f"\nmedian bytes / pngquant {statistics.median(ratios):.3f} "
              f"(max {max(ratios):.3f}); median score - pngquant's "
              f"{statistics.median(deltas):+.2f} (min {min(deltas):+.2f}); "
              f"lossless / oxipng -o 2: median {statistics.median(lossless):.3f}, "
              f"max {max(lossless):.3f}")


if __name__ == "__main__":
    main()
