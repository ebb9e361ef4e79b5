"""Counting animation frames from the bytes, with caps, before any plugin seeks through them.

Pillow's ``n_frames`` on a GIF walks every frame in Python; a 2 MB GIF of 100,000
one-pixel frames takes most of a second that way. This scanner reads only block
headers and stops as soon as a cap is passed, so hostile animations are refused in
microseconds per frame and never more than ``max_frames + 1`` frames in.
"""

from __future__ import annotations

from feather_core.errors import TooManyPixels


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a chain of GIF data sub-blocks (size byte, data; 0 ends)."""
    end = len(data)
    while pos < end:
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size
    return end


def gif_frames(data: bytes, max_frames: int, max_pixels: int) -> int:
    """The number of frames of a GIF, counting no further than the caps allow.

    Raises ``TooManyPixels`` when the GIF has more than ``max_frames`` frames or its
    frames together declare more than ``max_pixels`` pixels. A truncated or
    malformed stream is counted up to where it breaks (the decoder reports it later).
    """
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        return 1
    flags = data[10]
    # A frame placed past the logical screen grows the canvas (Pillow grows the image to
    # hold it), and every frame is decoded at that canvas: its size is capped too.
    right = int.from_bytes(data[6:8], "little")
    bottom = int.from_bytes(data[8:10], "little")
    pos = 13
    if flags & 0x80:
        pos += 3 << ((flags & 7) + 1)
    frames = 0
    pixels = 0
    end = len(data)
    while pos < end:
        block = data[pos]
        if block == 0x2C:  # image descriptor
            if pos + 10 > end:
                break
            left = int.from_bytes(data[pos + 1 : pos + 3], "little")
            top = int.from_bytes(data[pos + 3 : pos + 5], "little")
            width = int.from_bytes(data[pos + 5 : pos + 7], "little")
            height = int.from_bytes(data[pos + 7 : pos + 9], "little")
            local = data[pos + 9]
            frames += 1
            pixels += width * height
            right, bottom = max(right, left + width), max(bottom, top + height)
            if frames > max_frames:
                raise TooManyPixels(f"The animation has more than {max_frames:,} frames")
            if pixels > max_pixels or right * bottom > max_pixels:
                raise TooManyPixels(
                    f"The image has more than {max_pixels:,} pixels (all frames counted)")
            pos += 10
            if local & 0x80:
                pos += 3 << ((local & 7) + 1)
            pos = _skip_sub_blocks(data, pos + 1)  # +1: the LZW minimum code size
        elif block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        else:  # 0x3B trailer, or garbage where a block should start: the stream ends
            break
    return max(frames, 1)
