"""Hostile files written by hand: headers that declare huge images, lies, broken data.

Each is a few bytes to a few hundred kilobytes; none carries the pixels it claims.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` RGB, with one row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * min(width * 3, 3000))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


# One 1x1 LZW-coded image body: min code size 2, clear, index 0, end (one sub-block).
_GIF_PIXELS = b"\x02\x02\x44\x01\x00"


def _gif_frame(width: int, height: int, delay: int = 0) -> bytes:
    control = b"\x21\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00"
    descriptor = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00"
    return control + descriptor + _GIF_PIXELS


def gif_header(width: int, height: int, frames: int = 1, frame_size: tuple[int, int] | None
               = None) -> bytes:
    """A GIF with a ``width`` x ``height`` canvas and ``frames`` frames of ``frame_size``."""
    fw, fh = frame_size or (width, height)
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00"
    palette = b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00" if frames > 1 else b""
    return screen + palette + loop + _gif_frame(fw, fh, 1 if frames > 1 else 0) * frames + b";"


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose IFD declares ``width`` x ``height`` 8-bit grey, uncompressed."""
    entries = [
        (256, 4, 1, width),          # ImageWidth (LONG)
        (257, 4, 1, height),         # ImageLength
        (258, 3, 1, 8),              # BitsPerSample
        (259, 3, 1, 1),              # Compression: none
        (262, 3, 1, 1),              # Photometric: black is zero
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),  # StripOffsets: just after the IFD
        (278, 4, 1, height),         # RowsPerStrip
        (279, 4, 1, width * height & 0xFFFFFFFF),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HHI", tag, kind, count)
        packed += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\x00" * 64


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP whose info header declares ``width`` x ``height``, with 64 bytes of data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\x00" * 64
    head = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return head + info + pixels


def jpeg_header(width: int, height: int) -> bytes:
    """A baseline JPEG whose SOF0 declares ``width`` x ``height`` (a real tiny JPEG, patched)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp_header(width: int, height: int) -> bytes:
    """A VP8X WebP whose canvas is ``width`` x ``height`` (24-bit fields) with a tiny VP8L."""
    flags = 0
    vp8x = struct.pack("<I", flags) + (width - 1).to_bytes(3, "little") + \
        (height - 1).to_bytes(3, "little")
    # A 1x1 lossless bitstream, so the file is well formed apart from its size.
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "WEBP", lossless=True)
    real = buffer.getvalue()
    bitstream = real[12:]  # the VP8L chunk of the real file
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + bitstream
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, body: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def isobmff_header(width: int, height: int, brand: bytes) -> bytes:
    """A HEIF/AVIF whose primary item's ``ispe`` declares ``width`` x ``height``.

    ``brand`` is b"heic" or b"avif"; the coded data is a few zero bytes.
    """
    codec = b"hvc1" if brand == b"heic" else b"av01"
    config = _box(b"hvcC", b"\x01" + b"\x00" * 22) if brand == b"heic" else \
        _box(b"av1C", b"\x81\x00\x0c\x00")
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x00\x00" + b"mif1" + brand)
    hdlr = _full_box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 12 + b"\x00")
    pitm = _full_box(b"pitm", struct.pack(">H", 1))
    infe = _full_box(b"infe", struct.pack(">HH", 1, 0) + codec + b"\x00", version=2)
    iinf = _full_box(b"iinf", struct.pack(">H", 1) + infe)
    ispe = _full_box(b"ispe", struct.pack(">II", width, height))
    ipco = _box(b"ipco", config + ispe)
    ipma = _full_box(b"ipma", struct.pack(">IHB", 1, 1, 2) + bytes([0x81, 0x02]))
    iprp = _box(b"iprp", ipco + ipma)
    mdat_payload = b"\x00" * 16
    # iloc v0, offset_size 4, length_size 4, base_offset_size 0: one item, one extent.
    def iloc(offset: int) -> bytes:
        return _full_box(b"iloc", bytes([0x44, 0x00]) + struct.pack(
            ">HHHHII", 1, 1, 0, 1, offset, len(mdat_payload)))

    size = len(_full_box(b"meta", hdlr + pitm + iloc(0) + iinf + iprp))
    meta = _full_box(b"meta", hdlr + pitm + iloc(len(ftyp) + size + 8) + iinf + iprp)
    return ftyp + meta + _box(b"mdat", mdat_payload)


HEADER_BUILDERS = {
    "png": png_header,
    "gif": gif_header,
    "tiff": tiff_header,
    "bmp": bmp_header,
    "jpeg": jpeg_header,
    "webp": webp_header,
    "heic": lambda w, h: isobmff_header(w, h, b"heic"),
    "avif": lambda w, h: isobmff_header(w, h, b"avif"),
}


def many_frames_gif(frames: int = 100_000) -> bytes:
    """A small-canvas GIF with ``frames`` 1x1 frames (about 25 bytes each)."""
    return gif_header(1, 1, frames=frames)


def billion_laughs() -> bytes:
    lol = '<!ENTITY lol "lol">'
    levels = "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                     for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE svg [{lol}{levels}]>'
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            '<text>&lol9;</text></svg>').encode()


def use_bomb(levels: int = 12, fanout: int = 10) -> bytes:
    """The ``<use>`` amplification bomb: each level draws the previous ``fanout`` times."""
    defs = ['<circle id="l0" r="1" fill="red"/>']
    for i in range(1, levels + 1):
        uses = "".join(f'<use href="#l{i - 1}" xlink:href="#l{i - 1}" x="{j}"/>'
                       for j in range(fanout))
        defs.append(f'<g id="l{i}">{uses}</g>')
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
            f' width="200" height="200"><defs>{"".join(defs)}</defs>'
            f'<use href="#l{levels}" xlink:href="#l{levels}"/></svg>').encode()
