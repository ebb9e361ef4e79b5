"""Reading (and one repair of) the HEIF/AVIF item boxes, without a codec.

HEIF and AVIF describe each image item by properties in ``meta/iprp``: ``ispe`` (the
size the file declares), ``av1C`` (the AV1 configuration, which normally carries the
AV1 sequence header and so the size the image is really coded at), and the item-to-
property table ``ipma``. Four things here need them:

- the pixel budget is checked on every declared size before a decoder runs;
- libavif takes ``ispe`` at its word: it hands back an image of the declared size
  whatever the AV1 stream codes (cropped, or padded with garbage), so an item whose
  ``ispe`` differs from its AV1 sequence header is refused;
- libavif also refuses files whose associations are split over several ``ipma``
  boxes, which older encoders wrote for every image with alpha (link-u's samples); the
  boxes are merged into one, in place, so the rest of the file keeps its offsets;
- libavif hands back the whole coded image whatever its clean aperture (``clap``) says,
  so the crop rectangle is read here and applied after decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

# Container boxes walked to reach the item properties: box -> bytes to skip after
# the box header (``meta`` is a full box: version and flags come first).
_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}
_MAX_BOXES = 4096
_MAX_DEPTH = 3


@dataclass(frozen=True)
class Box:
    """One box: its type, where it starts, where its payload starts, and its end."""

    kind: bytes
    start: int
    body: int
    end: int


def boxes(data: bytes, start: int, end: int) -> Iterator[Box]:
    """The boxes between ``start`` and ``end``; stops at the first malformed one."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield Box(kind, pos, pos + header, min(pos + size, end))
        pos += size


def _find(data: bytes, path: tuple[bytes, ...]) -> list[Box]:
    """Every box reached by ``path`` (e.g. meta, iprp, ipco) from the top level."""
    found: list[Box] = []

    def walk(start: int, end: int, depth: int) -> None:
        for box in boxes(data, start, end):
            if box.kind == path[depth]:
                if depth == len(path) - 1:
                    found.append(box)
                elif depth < _MAX_DEPTH:
                    walk(box.body + _CONTAINERS.get(box.kind, 0), box.end, depth + 1)

    walk(0, len(data), 0)
    return found


def ispe_sizes(data: bytes) -> list[tuple[int, int]]:
    """Every ``ispe`` (image spatial extents) size declared under ``meta/iprp/ipco``."""
    sizes = []
    for box in _find(data, (b"meta", b"iprp", b"ipco", b"ispe")):
        if box.body + 12 <= box.end:
            width, height = struct.unpack(">II", data[box.body + 4 : box.body + 12])
            sizes.append((width, height))
    return sizes


def _properties(data: bytes) -> list[Box]:
    """The properties of ``ipco`` in order (``ipma`` refers to them from 1)."""
    return [p for ipco in _find(data, (b"meta", b"iprp", b"ipco"))
            for p in boxes(data, ipco.body, ipco.end)]


def _associations(data: bytes, ipma: Box) -> list[tuple[int, list[int]]] | None:
    """The (item id, [property index]) entries of one ``ipma`` box, or None if malformed."""
    if ipma.body + 8 > ipma.end:
        return None
    version = data[ipma.body]
    flags = int.from_bytes(data[ipma.body + 1 : ipma.body + 4], "big")
    count = int.from_bytes(data[ipma.body + 4 : ipma.body + 8], "big")
    id_size = 2 if version == 0 else 4
    wide = flags & 1  # property indices of 15 bits instead of 7
    pos = ipma.body + 8
    entries: list[tuple[int, list[int]]] = []
    for _ in range(count):
        if pos + id_size + 1 > ipma.end:
            return None
        item = int.from_bytes(data[pos : pos + id_size], "big")
        n = data[pos + id_size]
        pos += id_size + 1
        indices = []
        for _ in range(n):
            size = 2 if wide else 1
            if pos + size > ipma.end:
                return None
            raw = int.from_bytes(data[pos : pos + size], "big")
            indices.append(raw & (0x7FFF if wide else 0x7F))
            pos += size
        entries.append((item, indices))
    return entries


def merge_property_associations(data: bytes) -> bytes:
    """``data`` with its several ``ipma`` boxes merged into one, or unchanged.

    The merged box is smaller than the boxes it replaces; the difference becomes a
    ``free`` box right after ``iprp``, so ``meta`` keeps its size and every offset of
    ``iloc`` into the rest of the file stays right.
    """
    for iprp in _find(data, (b"meta", b"iprp")):
        children = list(boxes(data, iprp.body, iprp.end))
        ipmas = [b for b in children if b.kind == b"ipma"]
        if len(ipmas) < 2 or children[-len(ipmas):] != ipmas or iprp.body - iprp.start != 8:
            continue  # nothing to merge, or a layout this repair does not handle
        versions = {data[b.body] for b in ipmas}
        flags = {bytes(data[b.body + 1 : b.body + 4]) for b in ipmas}
        if len(versions) != 1 or len(flags) != 1:
            continue
        raw_entries = b""
        count = 0
        for ipma in ipmas:
            entries = _associations(data, ipma)
            if entries is None:
                return data
            count += len(entries)
            # The entries are copied as written (same version and flags in every box).
            raw_entries += data[ipma.body + 8 : ipma.end]
        merged_body = data[ipmas[0].body : ipmas[0].body + 4] + struct.pack(">I", count)
        merged = struct.pack(">I", 8 + len(merged_body) + len(raw_entries)) + b"ipma"
        merged += merged_body + raw_entries
        freed = ipmas[-1].end - ipmas[0].start - len(merged)
        if freed < 8:
            continue
        new_iprp_size = (iprp.end - iprp.start) - freed
        head = data[: iprp.start] + struct.pack(">I", new_iprp_size)
        padding = struct.pack(">I", freed) + b"free" + bytes(freed - 8)
        return head + data[iprp.start + 4 : ipmas[0].start] + merged + padding + data[iprp.end :]
    return data


class _Bits:
    """A big-endian bit reader over bytes (AV1's f(n) and uvlc())."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("truncated")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.read(zeros) + (1 << zeros) - 1


def av1_sequence_size(obus: bytes) -> tuple[int, int] | None:
    """The maximum frame size of the first AV1 sequence header OBU in ``obus``, or None."""
    pos = 0
    while pos < len(obus):
        header = obus[pos]
        obu_type = (header >> 3) & 0xF
        has_size = header & 0x02
        pos += 2 if header & 0x04 else 1
        if not has_size:
            size = len(obus) - pos
        else:
            size = shift = 0
            while True:
                if pos >= len(obus) or shift > 56:
                    return None
                byte = obus[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        if obu_type == 1:  # OBU_SEQUENCE_HEADER
            try:
                return _sequence_header_size(obus[pos : pos + size])
            except ValueError:
                return None
        pos += size
    return None


def _sequence_header_size(payload: bytes) -> tuple[int, int]:
    # AV1 specification, 5.5.1 sequence_header_obu(), up to max_frame_height_minus_1.
    bits = _Bits(payload)
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    reduced = bits.read(1)
    if reduced:
        bits.read(5)  # seq_level_idx[0]
    else:
        decoder_model_info = False
        buffer_delay_length = 0
        if bits.read(1):  # timing_info_present_flag
            bits.read(32)  # num_units_in_display_tick
            bits.read(32)  # time_scale
            if bits.read(1):  # equal_picture_interval
                bits.uvlc()
            decoder_model_info = bool(bits.read(1))
            if decoder_model_info:
                buffer_delay_length = bits.read(5) + 1
                bits.read(32)  # num_units_in_decoding_tick
                bits.read(5)  # buffer_removal_time_length_minus_1
                bits.read(5)  # frame_presentation_time_length_minus_1
        initial_display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)  # operating_point_idc
            if bits.read(5) > 7:  # seq_level_idx
                bits.read(1)  # seq_tier
            if decoder_model_info and bits.read(1):
                bits.read(buffer_delay_length)  # decoder_buffer_delay
                bits.read(buffer_delay_length)  # encoder_buffer_delay
                bits.read(1)  # low_delay_mode_flag
            if initial_display_delay and bits.read(1):
                bits.read(4)  # initial_display_delay_minus_1
    width_bits = bits.read(4) + 1
    height_bits = bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1


@dataclass(frozen=True)
class SizeMismatch:
    """An item whose declared ``ispe`` size is not the size its AV1 stream codes."""

    item: int
    declared: tuple[int, int]
    coded: tuple[int, int]


def _item_heads(data: bytes, limit: int = 256) -> dict[int, bytes]:
    """The first ``limit`` bytes of each item's first extent, as ``iloc`` places them."""
    heads: dict[int, bytes] = {}
    idat = _find(data, (b"meta", b"idat"))
    for iloc in _find(data, (b"meta", b"iloc")):
        try:
            heads.update(_iloc_heads(data, iloc, idat[0] if idat else None, limit))
        except (ValueError, IndexError, struct.error):
            continue  # a broken iloc: the decoder reports it
    return heads


def _iloc_heads(data: bytes, iloc: Box, idat: Box | None, limit: int) -> dict[int, bytes]:
    pos = iloc.body
    version = data[pos]
    pos += 4
    sizes = data[pos], data[pos + 1]
    offset_size, length_size = sizes[0] >> 4, sizes[0] & 0xF
    base_offset_size, index_size = sizes[1] >> 4, (sizes[1] & 0xF if version in (1, 2) else 0)
    pos += 2

    def read(size: int) -> int:
        nonlocal pos
        if pos + size > iloc.end:
            raise ValueError("iloc is truncated")
        value = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        return value

    heads: dict[int, bytes] = {}
    for _ in range(read(4 if version == 2 else 2)):
        item = read(4 if version == 2 else 2)
        method = read(2) & 0xF if version in (1, 2) else 0
        read(2)  # data_reference_index
        base = read(base_offset_size)
        extents = read(2)
        first: tuple[int, int] | None = None
        for _ in range(extents):
            read(index_size)
            offset, length = read(offset_size), read(length_size)
            first = first or (base + offset, length)
        if first is None or method not in (0, 1):
            continue
        start, length = first
        if method == 1:
            if idat is None:
                continue
            start += idat.body
        end = len(data) if length == 0 else start + length
        heads[item] = data[start : min(end, start + limit)]
    return heads


def av1_size_mismatches(data: bytes) -> list[SizeMismatch]:
    """Items whose ``ispe`` and AV1 sequence header disagree on the size.

    The sequence header is read from ``av1C`` when it carries one, else from the start
    of the item's data (where AVIF requires one).
    """
    properties = _properties(data)
    mismatches = []
    heads: dict[int, bytes] | None = None
    for ipma in _find(data, (b"meta", b"iprp", b"ipma")):
        for item, indices in _associations(data, ipma) or []:
            declared = coded = None
            for index in indices:
                if not 1 <= index <= len(properties):
                    continue
                prop = properties[index - 1]
                if prop.kind == b"ispe" and prop.body + 12 <= prop.end:
                    declared = struct.unpack(">II", data[prop.body + 4 : prop.body + 12])
                elif prop.kind == b"av1C" and prop.body + 4 < prop.end:
                    coded = av1_sequence_size(data[prop.body + 4 : prop.end])
            if declared is not None and coded is None and any(
                    properties[i - 1].kind == b"av1C" for i in indices
                    if 1 <= i <= len(properties)):
                heads = _item_heads(data) if heads is None else heads
                coded = av1_sequence_size(heads.get(item, b""))
            if declared is not None and coded is not None and tuple(declared) != coded:
                mismatches.append(SizeMismatch(item, (declared[0], declared[1]), coded))
    return mismatches


_INT32_MAX = 0x7FFFFFFF


def _primary_item(data: bytes) -> int | None:
    """The item id of ``meta/pitm``, or None when the file names none."""
    for pitm in _find(data, (b"meta", b"pitm")):
        if pitm.body + 6 > pitm.end:
            continue
        size = 2 if data[pitm.body] == 0 else 4
        if pitm.body + 4 + size <= pitm.end:
            return int.from_bytes(data[pitm.body + 4 : pitm.body + 4 + size], "big")
    return None


def _round_down(value: Fraction) -> int:
    # libheif's Fraction::round_down: C division, towards zero.
    return int(value)


def _round(value: Fraction) -> int:
    # libheif's Fraction::round: (n + d/2) / d in C integers, so towards zero again.
    total = value.numerator + value.denominator // 2
    quotient = abs(total) // value.denominator
    return quotient if total >= 0 else -quotient


def _clap_rectangle(body: bytes, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The (left, top, width, height) a ``clap`` body cuts from a ``width`` x ``height``
    picture, rounded and clipped as libheif does; None when it is unusable.

    The body is ISO/IEC 14496-12 section 12.1.4: the aperture's width, height and the
    offset of its centre from the picture's centre, each a fraction (the offsets signed).
    MIAF wants whole numbers; libheif rounds the left edge down and the top edge to the
    nearest, then clips to the picture. It refuses a box with a zero denominator or a
    field past 2^31 - 1 and a rectangle that misses the picture: those are ignored here.
    """
    if len(body) < 32:
        return None
    width_n, width_d, height_n, height_d, horiz_n, horiz_d, vert_n, vert_d = struct.unpack(
        ">IIIIiIiI", body[:32])
    unsigned = (width_n, width_d, height_n, height_d, horiz_d, vert_d)
    if any(v > _INT32_MAX for v in unsigned) or 0 in (width_d, height_d, horiz_d, vert_d):
        return None
    clean_w, clean_h = Fraction(width_n, width_d), Fraction(height_n, height_d)
    # The centre is at horizOff + (width - 1) / 2; the aperture reaches (clean_w - 1) / 2
    # either side of it.
    left = _round_down(Fraction(horiz_n, horiz_d) + Fraction(width - 1, 2) - (clean_w - 1) / 2)
    top = _round(Fraction(vert_n, vert_d) + Fraction(height - 1, 2) - (clean_h - 1) / 2)
    right = _round(clean_w - 1 + left)
    bottom = _round(clean_h - 1 + top)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width - 1), min(bottom, height - 1)
    if left > right or top > bottom:
        return None
    return left, top, right - left + 1, bottom - top + 1


def clean_aperture(data: bytes, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The clean aperture of the primary item, as (left, top, width, height) in the pixels
    of its coded ``size`` picture; None when no usable ``clap`` is associated with it.

    The primary item is the one ``pitm`` names, else the first item with properties.
    Properties apply in their ``ipma`` order: MIAF puts ``clap`` before ``irot`` and
    ``imir``, so the crop is cut from the coded picture and turned with it afterwards. A
    ``clap`` that follows a rotation or mirror cuts the turned picture (as libheif
    reads it); its rectangle is mapped back to the coded one. A ``clap`` that cannot
    be used (see ``_clap_rectangle``) is skipped. Never raises on malformed boxes.
    """
    properties = _properties(data)
    entries = [entry for ipma in _find(data, (b"meta", b"iprp", b"ipma"))
               for entry in _associations(data, ipma) or []]
    if not entries:
        return None
    primary = _primary_item(data)
    if primary is None:
        indices = entries[0][1]
    else:
        found = next((indices for item, indices in entries if item == primary), None)
        if found is None:
            return None
        indices = found
    width, height = size
    # Pixel (x, y) of the picture as transformed so far is pixel
    # (a*x + b*y + tx, c*x + d*y + ty) of the coded one.
    a, b, c, d, tx, ty = 1, 0, 0, 1, 0, 0
    cropped = False
    for index in indices:
        if not 1 <= index <= len(properties):
            continue
        prop = properties[index - 1]
        first = data[prop.body] if prop.body < prop.end else None
        if prop.kind == b"irot" and first is not None:
            for _ in range(first & 3):
                # A quarter turn anticlockwise: (x, y) of the turned picture was
                # (width - 1 - y, x) before it.
                a, b, tx = b, -a, a * (width - 1) + tx
                c, d, ty = d, -c, c * (width - 1) + ty
                width, height = height, width
        elif prop.kind == b"imir" and first is not None:
            if first & 1:  # about a vertical axis: left and right swap
                a, tx, c, ty = -a, a * (width - 1) + tx, -c, c * (width - 1) + ty
            else:  # about a horizontal axis: top and bottom swap
                b, tx, d, ty = -b, b * (height - 1) + tx, -d, d * (height - 1) + ty
        elif prop.kind == b"clap":
            rectangle = _clap_rectangle(bytes(data[prop.body : prop.end]), width, height)
            if rectangle is None:
                continue
            left, top, width, height = rectangle
            tx, ty = a * left + b * top + tx, c * left + d * top + ty
            cropped = True
    if not cropped:
        return None
    x0, y0 = tx, ty
    x1, y1 = a * (width - 1) + b * (height - 1) + tx, c * (width - 1) + d * (height - 1) + ty
    return min(x0, x1), min(y0, y1), abs(x1 - x0) + 1, abs(y1 - y0) + 1
