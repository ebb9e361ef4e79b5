"""Lossless metadata removal for files returned as they came in.

When re-encoding would only make a file bigger, Feather returns the input
itself; these functions take EXIF, XMP and IPTC out of it without touching the
compressed pixels, and keep what colours depend on (ICC profiles, the Adobe
marker of CMYK JPEGs, PNG's sRGB/gAMA/cHRM).
"""

from __future__ import annotations

import struct
import zlib

_JPEG_DROP_APP = {
    0xE1,  # APP1: EXIF, XMP
    0xED,  # APP13: Photoshop IRB / IPTC
    0xFE,  # COM
}
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_WEBP_DROP = {b"EXIF", b"XMP "}


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]] | None:
    """(marker, start, end) of each segment up to the scan, the scan last; None if malformed."""
    if not data.startswith(b"\xff\xd8"):
        return None
    segments: list[tuple[int, int, int]] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data
            segments.append((marker, pos, len(data)))
            return segments
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            segments.append((marker, pos, pos + 2))
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        segments.append((marker, pos, end))
        pos = end
    return None


def strip_jpeg(data: bytes) -> bytes | None:
    """The JPEG without APP1/APP13/COM segments, or None if its structure is unexpected."""
    segments = _jpeg_segments(data)
    if segments is None:
        return None
    kept = [data[start:end] for marker, start, end in segments if marker not in _JPEG_DROP_APP]
    return b"\xff\xd8" + b"".join(kept)


def jpeg_metadata_bytes(data: bytes) -> int:
    """How many bytes of a JPEG are EXIF, XMP, IPTC and comments (0 if it cannot tell)."""
    segments = _jpeg_segments(data) or []
    return sum(end - start for marker, start, end in segments if marker in _JPEG_DROP_APP)


def strip_png(data: bytes) -> bytes | None:
    """The PNG without text, EXIF and time chunks, or None if its structure is unexpected."""
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        return None
    out = bytearray(signature)
    pos = len(signature)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind not in _PNG_DROP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    return None


def strip_webp(data: bytes) -> bytes | None:
    """The WebP without EXIF and XMP chunks (VP8X flags updated), or None if unexpected."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunks = bytearray()
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > len(data):
            return None
        chunk = bytearray(data[pos:end])
        if kind == b"VP8X" and length >= 10:
            chunk[8] &= ~0x0C & 0xFF  # clear the EXIF (0x08) and XMP (0x04) flags
        if kind not in _WEBP_DROP:
            chunks += chunk
        pos = end
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + bytes(chunks)


STRIPPERS = {"jpeg": strip_jpeg, "png": strip_png, "webp": strip_webp}


def strip_metadata(data: bytes, fmt: str) -> bytes | None:
    """``data`` with EXIF/XMP/IPTC removed losslessly, or None when that cannot be done."""
    stripper = STRIPPERS.get(fmt)
    return stripper(data) if stripper else None


def png_crc_ok(data: bytes) -> bool:
    """Whether every chunk CRC of a PNG matches (used by tests of the stripper)."""
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        body = data[pos + 4 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(body) != crc:
            return False
        pos += 12 + length
    return True


# Writing IPTC. JPEG has a place for it (Photoshop's APP13 resource block); PNG has
# none in its specification, but ImageMagick and ExifTool agree on a text chunk
# ("Raw profile type iptc", hex digits) that both read and write.

_PHOTOSHOP_SIGNATURE = b"Photoshop 3.0\x00"
_IPTC_RESOURCE = 0x0404
_PNG_IPTC_KEY = "Raw profile type iptc"


def photoshop_iptc_segment(iptc: bytes) -> bytes:
    """A JPEG APP13 segment holding ``iptc`` as Photoshop's IPTC-NAA resource."""
    resource = (b"8BIM" + struct.pack(">H", _IPTC_RESOURCE) + b"\x00\x00"
                + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) & 1))
    body = _PHOTOSHOP_SIGNATURE + resource
    if len(body) + 2 > 0xFFFF:
        raise ValueError("IPTC data too large for one APP13 segment")
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def insert_jpeg_iptc(data: bytes, iptc: bytes) -> bytes:
    """The JPEG ``data`` with an APP13 IPTC segment after its JFIF/EXIF/XMP/ICC segments.

    Returned unchanged when its structure is unexpected or the records do not fit one
    segment (64 KB, far more than any caption and keywords need).
    """
    segments = _jpeg_segments(data)
    if segments is None:
        return data
    try:
        segment = photoshop_iptc_segment(iptc)
    except ValueError:
        return data
    position = 2
    for marker, _start, end in segments:
        if not 0xE0 <= marker <= 0xEF:
            break
        position = end
    return data[:position] + segment + data[position:]


def png_iptc_text(iptc: bytes) -> tuple[str, str]:
    """The (keyword, text) of the ImageMagick text chunk that carries IPTC in a PNG."""
    hexed = iptc.hex()
    lines = "\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72))
    return _PNG_IPTC_KEY, f"\niptc\n{len(iptc):8d}\n{lines}\n"


def iptc_from_png_text(text: object) -> bytes | None:
    """The IPTC records of an ImageMagick "Raw profile type iptc" text, or None."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split(None, 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    try:
        data = bytes.fromhex("".join(parts[2].split()))
    except ValueError:
        return None
    if data.startswith(_PHOTOSHOP_SIGNATURE):  # some writers wrap the whole APP13 body
        return _iptc_from_irb(data[len(_PHOTOSHOP_SIGNATURE):])
    return data or None


def _iptc_from_irb(irb: bytes) -> bytes | None:
    pos = 0
    while pos + 12 <= len(irb) and irb[pos : pos + 4] == b"8BIM":
        resource = int.from_bytes(irb[pos + 4 : pos + 6], "big")
        name_length = irb[pos + 6]
        pos += 6 + name_length + 1 + ((name_length + 1) & 1)
        size = int.from_bytes(irb[pos : pos + 4], "big")
        pos += 4
        if resource == _IPTC_RESOURCE:
            return irb[pos : pos + size] or None
        pos += size + (size & 1)
    return None
