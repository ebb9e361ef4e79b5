"""glibc's allocator, tuned for each kind of process: one that runs image jobs, one
that only receives requests.

Every image job allocates and frees buffers of tens of megabytes (decoded pixels,
``tobytes`` copies, encoder output). With glibc's defaults each such buffer is a
fresh ``mmap`` whose pages fault in one by one on first write and are unmapped
again on free, so the next job pays the faults again: measured here, a third of the
CPU of a JPEG → JPEG 1600 px job went to page faults. Keeping freed memory in the
heap (a high trim threshold) and serving buffers of up to 32 MB from it (the mmap
threshold) lets the next job reuse those pages (``keep_freed_memory``). Larger
buffers, those of a full-size photo of many megapixels, still get their own mapping
and go back at once, so the peak of a process that once handled the largest allowed
image is not raised by memory it kept from smaller ones. One arena for every thread:
a job's encoder threads then share the heap that the job's earlier buffers left.

A process that only receives requests wants the opposite (``hand_back_large_buffers``):
an upload held in memory grows a megabyte at a time to 20 MB, and from the heap each
growth may copy the whole buffer, briefly doubling it, and what is freed stays in the
process. Mapped on its own, a buffer grows in place (``mremap``) and goes back to the
kernel when the request ends, so a worker's peak is what it holds, not twice that. The
smaller buffers every request uses (the body's reads, the parser's slices) stay in the
heap: up to 4 MB of it is kept free rather than given back, since glibc's default of
128 KB made each request fault those pages in again, a third of a worker's CPU for a
photo's upload.

This tunes the whole process, so the library never does it by itself: the job
processes, the command line and the bench keep freed memory; the server's workers
hand large buffers back. The library only gives kept memory back at one point, before
the largest allocation of a job that has already peaked (``release_freed_memory``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30
_RECEIVER_MMAP_THRESHOLD = 1 << 20
_RECEIVER_TRIM_THRESHOLD = 4 << 20


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for repeated large buffers; False where there is no glibc."""
    return _mallopt((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
                    (_M_ARENA_MAX, 1))


def hand_back_large_buffers() -> bool:
    """Map every buffer of a megabyte or more on its own (a fixed threshold, which
    glibc then no longer raises) and keep up to 4 MB of the heap's free top; False
    where there is no glibc."""
    return _mallopt((_M_MMAP_THRESHOLD, _RECEIVER_MMAP_THRESHOLD),
                    (_M_TRIM_THRESHOLD, _RECEIVER_TRIM_THRESHOLD))


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the kernel (``malloc_trim``); False where there
    is no glibc. Kept memory saves page faults, but under a memory ceiling it counts."""
    libc = _libc()
    if libc is None:
        return False
    try:
        trim = libc.malloc_trim
    except AttributeError:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # Looked up once: find_library runs ldconfig in a new process, and a large quality
    # search gives memory back before each of its whole tries.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _mallopt(*options: tuple[int, int]) -> bool:
    libc = _libc()
    if libc is None:
        return False
    try:
        mallopt = libc.mallopt
    except AttributeError:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(option, value) for option, value in options)
