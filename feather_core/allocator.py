"""Keep freed memory for reuse instead of handing it back to the kernel at once.

Every image job allocates and frees buffers of tens of megabytes (decoded pixels,
``tobytes`` copies, encoder output). With glibc's defaults each such buffer is a
fresh ``mmap`` whose pages fault in one by one on first write and are unmapped
again on free, so the next job pays the faults again: measured here, a third of the
CPU of a JPEG → JPEG 1600 px job went to page faults. Keeping freed memory in the
heap (a high trim threshold) and serving buffers of up to 32 MB from it (the mmap
threshold) lets the next job reuse those pages. Larger buffers, those of a full-size
photo of many megapixels, still get their own mapping and go back at once, so the
peak of a worker that once handled the largest allowed image is not raised by
memory it kept from smaller ones.

One arena for every thread: the server runs each job on a worker thread (so it can
answer 504 on time), and glibc would give that thread its own arena, whose heaps are
capped at 64 MB; a 12 MP photo's buffers then went to fresh mappings again, 15 % of
the CPU of a target-size job. The image work allocates a few large buffers, so the
one lock costs nothing measurable, also with a batch's parallel threads.

This tunes the whole process, so the library never does it by itself: the server's
workers, the command line and the bench call it at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for repeated large buffers; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
                and mallopt(_M_ARENA_MAX, 1))
