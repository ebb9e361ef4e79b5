"""Generated test images: gradients with noise, so encoders have real work to do."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image


def photo(width: int = 640, height: int = 480, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A photo-like image: smooth colour gradients, some shapes, mild noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    r = 255 * (0.5 + 0.5 * np.sin(6 * x + 3 * y))
    g = 255 * (0.5 + 0.5 * np.cos(4 * y - 2 * x))
    b = 255 * (x * y)
    rgb = np.stack([r, g, b], axis=-1)
    rgb = rgb + rng.normal(0, 8, rgb.shape)
    cy, cx = height // 2, width // 2
    yy, xx = np.ogrid[:height, :width]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(width, height) // 5) ** 2
    rgb[disc] = [250, 240, 30]
    image = Image.fromarray(rgb.clip(0, 255).astype("uint8"), "RGB")
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize((width, height))
        image.putalpha(alpha)
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def marked(width: int = 300, height: int = 200) -> Image.Image:
    """Four coloured quadrants (red TL, green TR, blue BL, white BR): shows orientation."""
    image = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    image.paste((220, 20, 20), (0, 0, w2, h2))
    image.paste((20, 200, 20), (w2, 0, width, h2))
    image.paste((20, 20, 220), (0, h2, w2, height))
    image.paste((250, 250, 250), (w2, h2, width, height))
    return image


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """The bytes of ``image`` saved as ``fmt`` (HEIF via pillow-heif)."""
    if fmt.upper() in ("HEIF", "HEIC"):
        import pillow_heif

        pillow_heif.register_heif_opener()
        fmt = "HEIF"
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def with_orientation(image: Image.Image, orientation: int, **params: Any) -> bytes:
    """A JPEG of ``image`` stored so that EXIF ``orientation`` makes it upright again."""
    stored = {
        1: lambda im: im,
        2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
        4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
        6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
        7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
        8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
    }[orientation](image)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes(), **params)


def animated_gif(frames: int = 4, size: tuple[int, int] = (64, 48),
                 durations: list[int] | None = None) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:],
                   duration=durations or [100 + 20 * i for i in range(frames)], loop=0)
    return buffer.getvalue()


def _s15(value: float) -> bytes:
    import struct

    return struct.pack(">i", round(value * 65536))


def odd_cmyk_profile() -> bytes:
    """A tiny ICC v2 CMYK profile whose colours no plain formula gives: cyan ink prints red.

    Its A2B0 table (lut8, 2 grid points per ink) maps each corner of the CMYK cube to
    Lab: no ink is white, any ink mid-grey, black ink black, and cyan adds +a (red) and
    yellow +b. A converter that honours the profile turns pure cyan pinkish red; one that
    ignores it gives cyan. Written here because no CMYK profile can be generated otherwise.
    """
    import struct

    def text_description(text: bytes) -> bytes:
        return (b"desc" + bytes(4) + struct.pack(">I", len(text) + 1) + text + b"\0"
                + bytes(8) + bytes(3) + bytes(67))

    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lightness = 20 if k else (150 if (c or m or y) else 255)
                    clut += bytes([lightness, 128 + 70 * c, 128 + 70 * y])
    identity = bytes(range(256))
    matrix = b"".join(_s15(1.0 if i == j else 0.0) for i in range(3) for j in range(3))
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + matrix + identity * 4 + clut + identity * 3
    d50 = _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    tags = [(b"desc", text_description(b"Odd CMYK")), (b"wtpt", b"XYZ " + bytes(4) + d50),
            (b"cprt", b"text" + bytes(4) + b"public domain\0"), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + bytes([2, 0x10, 0, 0])
              + b"prtr" + b"CMYK" + b"Lab " + bytes(12) + b"acsp" + b"APPL" + bytes(24)
              + d50 + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def screenshot(width: int = 480, height: int = 320, seed: int = 0) -> Image.Image:
    """A UI screenshot: flat panels, a gradient sidebar, soft shadows, anti-aliased text
    and chart lines, and a photo thumbnail, as a browser would render them."""
    from PIL import ImageDraw, ImageFilter, ImageFont

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (244, 246, 250))
    sidebar = Image.linear_gradient("L").resize((width // 5, height))
    image.paste(Image.merge("RGB", [sidebar.point(lambda v: 30 + v // 8),
                                    sidebar.point(lambda v: 42 + v // 6),
                                    sidebar.point(lambda v: 72 + v // 4)]), (0, 0))
    shadow = Image.new("L", (width, height), 0)
    cards = [(width // 5 + 16 + i * (width // 4), 20, width // 5 + (i + 1) * (width // 4), 90)
             for i in range(3)]
    shadow_draw = ImageDraw.Draw(shadow)
    for box in cards:
        shadow_draw.rounded_rectangle((box[0], box[1] + 3, box[2], box[3] + 3), 8, fill=60)
    image.paste((0, 0, 0), (0, 0), shadow.filter(ImageFilter.GaussianBlur(4)))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    big = ImageFont.load_default(size=22)
    for n, box in enumerate(cards):
        draw.rounded_rectangle(box, 8, fill=(255, 255, 255))
        draw.text((box[0] + 10, box[1] + 8), ("Revenue", "Orders", "Visitors")[n],
                  fill=(90, 90, 90), font=font)
        draw.text((box[0] + 10, box[1] + 28), f"{rng.integers(100, 99999):,}",
                  fill=(20, 20, 20), font=big)
        draw.text((box[0] + 10, box[1] + 54), f"+{rng.integers(1, 20)}.{rng.integers(0, 9)}%",
                  fill=(26, 156, 74), font=font)
    for n, label in enumerate(("Dashboard", "Orders", "Customers", "Reports")):
        draw.text((12, 30 + 28 * n), label, fill=(207, 216, 239), font=font)
    # The chart is drawn four times larger and reduced, so its lines are anti-aliased.
    chart_size = (width - width // 5 - 140, height - 130)
    chart = Image.new("RGB", (chart_size[0] * 4, chart_size[1] * 4), (255, 255, 255))
    points = [(x * 4 * chart_size[0] // 20,
               int(4 * chart_size[1] * (0.5 + 0.35 * np.sin(x / 3) + rng.normal(0, 0.05))))
              for x in range(21)]
    ImageDraw.Draw(chart).line(points, fill=(59, 111, 224), width=10)
    image.paste(chart.resize(chart_size, Image.Resampling.LANCZOS), (width // 5 + 16, 110))
    thumbnail = photo(100, chart_size[1], seed=seed)
    image.paste(thumbnail, (width - 116, 110))
    return image


def logo(size: int = 256) -> Image.Image:
    """A transparent graphic: an anti-aliased gradient disc with a ring, soft-edged."""
    from PIL import ImageDraw

    scale = 4
    mask = Image.new("L", (size * scale, size * scale), 0)
    ImageDraw.Draw(mask).ellipse((8 * scale, 8 * scale, (size - 8) * scale, (size - 8) * scale),
                                 fill=255)
    mask = mask.resize((size, size), Image.Resampling.LANCZOS)
    gradient = Image.linear_gradient("L").resize((size, size))
    colour = Image.merge("RGB", [gradient.point(lambda v: 240 - v // 2),
                                 gradient.point(lambda v: 80 + v // 3),
                                 gradient.point(lambda v: 200 - v // 4)])
    ring = Image.new("L", (size * scale, size * scale), 0)
    ImageDraw.Draw(ring).ellipse((60 * scale, 60 * scale, (size - 60) * scale,
                                  (size - 60) * scale), outline=255, width=12 * scale)
    colour.paste((255, 255, 255), (0, 0), ring.resize((size, size), Image.Resampling.LANCZOS))
    colour.putalpha(mask)
    return colour


# --- AVIF/HEIF item properties, written into files an encoder made ---------------------------

def property_box(kind: bytes, body: bytes) -> bytes:
    """One item property box (``clap``, ``irot``, ``imir``...) around ``body``."""
    import struct

    return struct.pack(">I", 8 + len(body)) + kind + body


def clap_body(width: tuple[int, int], height: tuple[int, int], horiz_off: tuple[int, int],
              vert_off: tuple[int, int]) -> bytes:
    """The eight fields of a ``clap`` box, each (numerator, denominator); offsets signed."""
    import struct

    values = (*width, *height, *horiz_off, *vert_off)
    return struct.pack(">IIIIiIiI", *values)


def clap_for(rect: tuple[int, int, int, int], coded: tuple[int, int]) -> bytes:
    """A ``clap`` box that cuts ``rect`` (left, top, width, height) from a ``coded`` picture.

    ISO/IEC 14496-12 gives the aperture by its size and the offset of its centre from the
    picture's centre: left = horizOff + (W - width) / 2, so horizOff = (2 left + width - W) / 2.
    """
    left, top, width, height = rect
    return property_box(b"clap", clap_body((width, 1), (height, 1),
                                           (2 * left + width - coded[0], 2),
                                           (2 * top + height - coded[1], 2)))


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out, pos = [], start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append((bytes(data[pos + 4 : pos + 8]), pos, pos + size))
        if size < 8:
            break
        pos += size
    return out


def _children(data: bytes | bytearray, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The first box of each type between ``start`` and ``end``: (start, end)."""
    out: dict[bytes, tuple[int, int]] = {}
    for kind, box_start, box_end in _boxes(data, start, end):
        out.setdefault(kind, (box_start, box_end))
    return out


def with_item_properties(avif: bytes, *properties: bytes) -> bytes:
    """``avif`` (or a HEIC) with ``properties`` added to ``ipco`` and associated with the
    primary item (marked essential), in the order given, after the properties it has.

    ``meta``, ``iprp``, ``ipco`` and ``ipma`` grow, so every offset past them (``iloc``
    extents or base offsets, the ``stco`` chunks of an image sequence) moves as much.
    Written for the files Pillow's and pillow-heif's encoders make: ``iloc`` version 0,
    one ``ipma`` with 7-bit indices.
    """
    import struct

    top = _children(avif, 0, len(avif))
    meta_start, meta_end = top[b"meta"]
    meta = _children(avif, meta_start + 12, meta_end)
    iprp_start, iprp_end = meta[b"iprp"]
    iprp = _boxes(avif, iprp_start + 8, iprp_end)
    assert [kind for kind, _, _ in iprp] == [b"ipco", b"ipma"], "expected ipco, one ipma"
    (_, ipco_start, ipco_end), (_, ipma_start, ipma_end) = iprp
    existing = len(_boxes(avif, ipco_start + 8, ipco_end))
    pitm = meta[b"pitm"][0]
    primary = int.from_bytes(avif[pitm + 12 : pitm + 14], "big")

    ipco = avif[ipco_start + 4 : ipco_end] + b"".join(properties)
    ipco = struct.pack(">I", 4 + len(ipco)) + ipco
    head = avif[ipma_start + 8 : ipma_start + 16]
    assert head[0] == 0, "expected ipma version 0"
    assert not head[3] & 1, "expected 7-bit property indices"
    entries, pos = b"", ipma_start + 16
    assert existing + len(properties) < 0x80
    added = bytes(0x80 | (existing + n + 1) for n in range(len(properties)))
    for _ in range(int.from_bytes(head[4:8], "big")):
        item, count = int.from_bytes(avif[pos : pos + 2], "big"), avif[pos + 2]
        indices = avif[pos + 3 : pos + 3 + count] + (added if item == primary else b"")
        entries += struct.pack(">HB", item, len(indices)) + indices
        pos += 3 + count
    ipma = b"ipma" + head + entries
    ipma = struct.pack(">I", 4 + len(ipma)) + ipma
    grow = len(ipco) + len(ipma) - (ipma_end - ipco_start)
    out = bytearray(avif[:ipco_start] + ipco + ipma + avif[ipma_end:])
    for start in (meta_start, iprp_start):
        size = int.from_bytes(out[start : start + 4], "big")
        out[start : start + 4] = struct.pack(">I", size + grow)

    def moved(at: int, width: int) -> None:
        value = int.from_bytes(out[at : at + width], "big")
        if value >= iprp_end:
            out[at : at + width] = (value + grow).to_bytes(width, "big")

    iloc = _children(out, meta_start + 12, meta_end + grow)[b"iloc"][0]
    assert out[iloc + 8] == 0, "expected iloc version 0"
    offset_size, length_size, base_size = out[iloc + 12] >> 4, out[iloc + 12] & 15, \
        out[iloc + 13] >> 4
    pos = iloc + 16
    for _ in range(int.from_bytes(out[iloc + 14 : iloc + 16], "big")):
        pos += 4  # item id, data reference index
        if base_size:
            moved(pos, base_size)
        pos += base_size
        extents = int.from_bytes(out[pos : pos + 2], "big")
        pos += 2
        for _ in range(extents):
            if not base_size:
                moved(pos, offset_size)
            pos += offset_size + length_size
    if b"moov" in top:
        moov_start, moov_end = top[b"moov"][0] + grow, top[b"moov"][1] + grow
        trak = _children(out, moov_start + 8, moov_end)[b"trak"]
        mdia = _children(out, trak[0] + 8, trak[1])[b"mdia"]
        minf = _children(out, mdia[0] + 8, mdia[1])[b"minf"]
        stbl = _children(out, minf[0] + 8, minf[1])[b"stbl"]
        stco = _children(out, stbl[0] + 8, stbl[1])[b"stco"][0]
        for n in range(int.from_bytes(out[stco + 12 : stco + 16], "big")):
            moved(stco + 16 + 4 * n, 4)
    return bytes(out)
