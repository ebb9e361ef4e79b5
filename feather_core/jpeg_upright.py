"""An EXIF-rotated JPEG turned upright without decoding it: its own DCT coefficients, moved.

When re-encoding a rotated JPEG would not make it smaller, the input itself is the
answer, but it must come out upright and without an orientation to apply. libjpeg-
turbo's ``jpegtran`` (Debian's ``libjpeg-turbo-progs``, tested with 2.1.5) rotates and
flips the coefficients losslessly. It can only do so exactly when no partial MCU (the
8 or 16 px blocks at the right and bottom edges of an image whose size is not a
multiple of them) would move to the top or left edge: ``-perfect`` refuses those
cases, and this module then answers None (the caller re-encodes instead). ``-trim``
would drop the edge pixels and jpegtran's default would leave them unturned, so
neither is used.

The orientation tag is then set to 1 in EXIF and XMP (metadata kept) or the metadata
removed (stripped), as for every other output.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

from feather_core.metadata import strip_jpeg

# jpegtran's arguments that undo each EXIF orientation (the stored image is turned
# by them into the upright one).
_UNDO = {
    2: ("-flip", "horizontal"),
    3: ("-rotate", "180"),
    4: ("-flip", "vertical"),
    5: ("-transpose",),
    6: ("-rotate", "90"),
    7: ("-transverse",),
    8: ("-rotate", "270"),
}
# Looked up in fixed places rather than on PATH: the core reads no environment.
_SEARCH_PATH = "/usr/bin:/usr/local/bin:/opt/homebrew/bin:/opt/libjpeg-turbo/bin"
_ORIENTATION_TAG = 0x0112


def jpegtran() -> str | None:
    """The path of ``jpegtran``, or None when it is not installed."""
    return shutil.which("jpegtran", path=_SEARCH_PATH)


def upright_jpeg(data: bytes, orientation: int, *, keep_metadata: bool, progressive: bool,
                 timeout: float | None = None) -> bytes | None:
    """``data`` losslessly turned upright, or None when that cannot be exact.

    The Huffman tables are optimised (or the scans made progressive when asked), so
    the result is usually a little smaller than the input before any metadata goes.
    """
    tool = jpegtran()
    if tool is None or orientation not in _UNDO:
        return None
    mode = "-progressive" if progressive else "-optimize"
    try:
        done = subprocess.run([tool, "-copy", "all", "-perfect", mode, *_UNDO[orientation]],
                              input=data, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        return None
    if not keep_metadata:
        return strip_jpeg(done.stdout)
    return reset_orientation(done.stdout)


def reset_orientation(data: bytes) -> bytes:
    """``data`` with the EXIF and XMP orientation set to 1, in place (same length)."""
    out = bytearray(data)
    pos = 2
    while pos + 4 <= len(out) and out[pos] == 0xFF:
        marker = out[pos + 1]
        if marker in (0xDA, 0xD9):  # the scan: no more metadata
            break
        (length,) = struct.unpack(">H", out[pos + 2:pos + 4])
        body = slice(pos + 4, pos + 2 + length)
        if marker == 0xE1 and out[body.start:body.start + 6] == b"Exif\0\0":
            _reset_exif_orientation(out, body.start + 6, body.stop)
        elif marker == 0xE1:
            segment = bytes(out[body])
            fixed = re.sub(rb'(tiff:Orientation(?:="|>))\d', rb"\g<1>1", segment)
            out[body] = fixed
        pos += 2 + length
    return bytes(out)


def _reset_exif_orientation(out: bytearray, tiff: int, end: int) -> None:
    # IFD0 of the TIFF structure holds the orientation, a SHORT stored in the entry.
    order = bytes(out[tiff:tiff + 2])
    if order not in (b"II", b"MM"):
        return
    prefix = "<" if order == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(prefix + "I", out, tiff + 4)
        (count,) = struct.unpack_from(prefix + "H", out, tiff + ifd)
        for index in range(count):
            entry = tiff + ifd + 2 + 12 * index
            if entry + 12 > end:
                return
            tag, kind = struct.unpack_from(prefix + "HH", out, entry)
            if tag == _ORIENTATION_TAG and kind == 3:  # SHORT
                struct.pack_into(prefix + "H", out, entry + 8, 1)
                return
    except struct.error:
        return
