"""The bench's photos: the shared corpus's list when given or present, else generated photos."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
GENERATED_DIR = ROOT / "var" / "bench-photos"
# Megapixels of the generated set: the corpus's spread (2-24 MP), fewer of them.
GENERATED_SIZES = ((1800, 1200), (2048, 1536), (3082, 2048), (3264, 2448), (3024, 4032),
                   (4608, 1976), (3456, 4608), (8064, 3024))
AVIF_PICKS = (0, 2, 4, 7)


@dataclass(frozen=True)
class Photo:
    """One bench input: its name, bytes and size."""

    name: str
    data: bytes
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


@dataclass(frozen=True)
class PhotoSet:
    """The photos of every job, and where they came from."""

    origin: str
    photos: tuple[Photo, ...]
    avif: tuple[Photo, ...]


def shown_path(path: Path) -> str:
    """A folder as the results name it: relative to the project (``var/bench-photos``),
    or to its parent when it is a near sibling (``../shared/corpus``), else its name alone.
    The results are committed, so they never hold this machine's own absolute paths."""
    resolved = path.expanduser().resolve()
    if resolved.is_relative_to(ROOT):
        return resolved.relative_to(ROOT).as_posix()
    if resolved.is_relative_to(ROOT.parent):
        sibling = resolved.relative_to(ROOT.parent)
        if len(sibling.parts) <= SIBLING_DEPTH:
            return "../" + sibling.as_posix()
    return resolved.name


# How deep below the project's parent a folder is still named from there: a corpus
# beside the project, not a temporary folder that happens to share its parent.
SIBLING_DEPTH = 2


def _load(path: Path) -> Photo:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return Photo(path.name, data, width, height)


def _list_file(path: Path) -> list[Path]:
    base = path.parent / "corpus" if (path.parent / "corpus").is_dir() else path.parent
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [base / ln for ln in lines if ln and not ln.startswith("#")]


def _from_corpus(corpus: Path) -> PhotoSet:
    # The shared lists sit beside the corpus; the bench carries a copy for corpora without them.
    shared_list, shared_avif = corpus.parent / "bench_images.txt", corpus.parent / "avif_images.txt"
    main = shared_list if shared_list.is_file() else HERE / "corpus_photos.txt"
    avif = shared_avif if shared_avif.is_file() else HERE / "avif_photos.txt"
    rel = [ln.strip() for ln in main.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    rel_avif = [ln.strip() for ln in avif.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    return PhotoSet(shown_path(corpus), tuple(_load(corpus / r) for r in rel),
                    tuple(_load(corpus / r) for r in rel_avif))


def load_photos(images: str | None) -> PhotoSet:
    """Photos from ``images`` (a corpus directory, a directory of JPEGs or a list file).

    Without ``images``: the shared corpus when it is present, else generated photos.
    """
    if images:
        path = Path(images).expanduser().resolve()
        if path.is_file():
            photos = tuple(_load(p) for p in _list_file(path))
            return PhotoSet(shown_path(path), photos, _avif_picks(photos))
        if (path / "MANIFEST.md").is_file():
            return _from_corpus(path)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
            photos = tuple(_load(p) for p in files)
            return PhotoSet(shown_path(path), photos, _avif_picks(photos))
        raise SystemExit(f"bench: no images at {images}")
    if (DEFAULT_CORPUS / "MANIFEST.md").is_file():
        return _from_corpus(DEFAULT_CORPUS)
    photos = tuple(_load(p) for p in generate())
    return PhotoSet(f"generated ({shown_path(GENERATED_DIR)})", photos, _avif_picks(photos))


def _avif_picks(photos: tuple[Photo, ...]) -> tuple[Photo, ...]:
    # AVIF encodes are slow: four photos spanning the sizes.
    ordered = sorted(photos, key=lambda p: p.width * p.height)
    if len(ordered) <= 4:
        return tuple(ordered)
    step = (len(ordered) - 1) / 3
    return tuple(ordered[round(i * step)] for i in range(4))


def generate() -> list[Path]:
    """Photo-like JPEGs (q90) of the sizes in ``GENERATED_SIZES``, cached under var/."""
    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (width, height) in enumerate(GENERATED_SIZES):
        path = GENERATED_DIR / f"photo-{width}x{height}.jpg"
        if not path.is_file():
            photo(width, height, seed=index).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields, edges and fine texture: encoders and resamplers get real work."""
    rng = np.random.default_rng(seed)
    # A low-resolution random field upscaled gives smooth regions and soft edges at any size.
    coarse = rng.integers(0, 256, (max(2, height // 160), max(2, width // 160), 3), dtype=np.uint8)
    base = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    detail = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8)), dtype=np.uint8)
    texture = Image.fromarray(detail, "L").resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(base, dtype=np.int16)
    pixels += (np.asarray(texture, dtype=np.int16)[..., None] - 128) // 4
    pixels += rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()
