"""Keep large freed buffers in the process heap, so a camera frame's buffers are not page-faulted in anew.

glibc serves each allocation above its mmap threshold (128 KiB, raised on its own only up to the
sizes freed so far) with a fresh `mmap` and returns it with `munmap` on free, and gives the heap's
free top back to the kernel above its trim threshold. A 640x480 rgb8 frame (0.9 MB) passes through
several such buffers per message (rclpy's C message, the serialised buffer, Python bytes, the
array), and every page of a fresh mapping costs a page fault: measured here (a VM), serialising
one such `sensor_msgs/Image` took 1.1-4.7 ms that way and 0.08 ms with buffers kept in the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3

DEFAULT_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the ceiling of glibc's own dynamic threshold on 64-bit
DEFAULT_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def keep_freed_memory(
    mmap_threshold_bytes: int = DEFAULT_MMAP_THRESHOLD_BYTES, trim_threshold_bytes: int = DEFAULT_TRIM_THRESHOLD_BYTES
) -> bool:
    """Serve allocations below `mmap_threshold_bytes` from the heap and keep up to `trim_threshold_bytes`
    of free heap top for reuse (process-wide, every thread). False where the C library is not glibc
    (nothing changed). ValueError for a threshold outside 0 < bytes < 2**31 (mallopt takes a C int)."""
    for key, value in (("mmap_threshold_bytes", mmap_threshold_bytes), ("trim_threshold_bytes", trim_threshold_bytes)):
        if not 0 < int(value) < 2**31:
            raise ValueError(f"{key} must be in 0 < bytes < 2**31, got {value}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl, macOS: nothing to tune)
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold_bytes))) and bool(
        mallopt(M_TRIM_THRESHOLD, int(trim_threshold_bytes))
    )
