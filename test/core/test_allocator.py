"""Large freed buffers stay in the heap (glibc mallopt), so a frame-sized allocation is not page-faulted in anew."""

from __future__ import annotations

import platform

import pytest

from vla_ros.core.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_thresholds_and_a_value_mallopt_cannot_take_is_refused():
    assert keep_freed_memory()
    assert keep_freed_memory(mmap_threshold_bytes=1 << 20, trim_threshold_bytes=64 << 20)
    with pytest.raises(ValueError, match="mmap_threshold_bytes"):
        keep_freed_memory(mmap_threshold_bytes=1 << 40)
    frame = bytearray(921_600)  # a 640x480 rgb8 frame's buffer: allocated and freed as before
    frame[-1] = 7
    assert sum(frame) == 7
