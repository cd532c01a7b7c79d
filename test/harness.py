"""Helpers any test may import by name (`from harness import wait_until`): test/conftest.py puts this folder on
sys.path."""

from __future__ import annotations

import time


def wait_until(predicate, timeout_s: float, interval_s: float = 0.02) -> bool:
    """Whether `predicate()` became true within `timeout_s` (polled every `interval_s`, once more at the end)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
