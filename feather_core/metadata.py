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
