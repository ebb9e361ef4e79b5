"""Recognise a format from its first bytes, never from a name or a MIME type."""

from __future__ import annotations

from feather_core.errors import InvalidImage, UnsupportedFormat
from feather_core.isobmff import ispe_sizes

# Real formats Feather does not accept: answered 415 rather than 422, so a user
# learns that the file is fine but the format is not served here.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"8BPS", "PSD"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"icns", "ICNS"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"gimp xcf", "XCF"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "HDR"),
    (b"#?RGBE", "HDR"),
    (b"FORM", "IFF"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"SIMPLE  =", "FITS"),
    (b"P1", "PBM"), (b"P2", "PGM"), (b"P3", "PPM"),
    (b"P4", "PBM"), (b"P5", "PGM"), (b"P6", "PPM"), (b"P7", "PAM"),
)

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}


def _isobmff_brands(head: bytes) -> list[bytes]:
    size = int.from_bytes(head[0:4], "big")
    end = min(max(size, 16), len(head), 256)
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, end - 3, 4)]
    return [major, *compatible]


def _sniff_isobmff(head: bytes) -> str:
    brands = _isobmff_brands(head)
    major = brands[0]
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIC_BRANDS:
        return "heic"
    if major in _HEIF_BRANDS:
        if any(b in _AVIF_BRANDS for b in brands):
            return "avif"
        if any(b in _HEIC_BRANDS for b in brands):
            return "heic"
        return "heif"
    if any(b in _AVIF_BRANDS for b in brands):
        return "avif"
    if any(b in _HEIC_BRANDS for b in brands):
        return "heic"
    raise UnsupportedFormat("Unsupported format: ISO media file that is not AVIF or HEIF")


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"<"):
        return False
    lowered = text[:4096].lower()
    return b"<svg" in lowered


def sniff_format(data: bytes) -> str:
    """The input format of ``data`` by its magic bytes ("jpeg", "png", ..., "svg").

    Raises ``UnsupportedFormat`` for real formats Feather does not read and
    ``InvalidImage`` for bytes that are no image at all.
    """
    head = data[:4096]
    if len(head) < 4:
        raise InvalidImage("The file is empty or too short to be an image")
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        return "bmp"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _sniff_isobmff(head)
    for magic, name in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise UnsupportedFormat(f"Unsupported format: {name}")
    if _looks_like_svg(head):
        return "svg"
    raise InvalidImage("The file is not a recognisable image")


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"VP8X" or len(data) < 30:
        return None
    return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)


def declared_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """The largest width and height a HEIF/AVIF/WebP header declares, read without a codec.

    These decoders have size limits of their own that fail with a generic error
    (libavif refuses over 16384 x 16384), so the pixel budget is checked on what
    the header says before they are called. None when the header says nothing.
    """
    if fmt in ("heic", "heif", "avif"):
        sizes = ispe_sizes(data)
        return max(sizes, key=lambda s: s[0] * s[1]) if sizes else None
    if fmt == "webp":
        return _webp_canvas(data)
    return None
