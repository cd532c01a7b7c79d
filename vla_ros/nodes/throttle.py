"""Log throttling keyed by what went wrong, so a new kind of error is never hidden by an old one."""

from __future__ import annotations

import time


class KeyedThrottle:
    """`ready(key)` is True at most once per `period_s` for each key."""

    def __init__(self, period_s: float = 2.0):
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self.period_s:
            return False
        self._last[key] = now
        return True


class ThrottledLog:
    """A node's logger as the cores' `Log` (vla_ros/policy_core.py): warnings and errors given a `key` are
    logged at most once per `period_s` per key."""

    def __init__(self, logger, period_s: float = 2.0):
        self.logger, self.throttle = logger, KeyedThrottle(period_s)

    def info(self, text: str) -> None:
        self.logger.info(text)

    def warning(self, text: str, key: str = "") -> None:
        if not key or self.throttle.ready("warning:" + key):
            self.logger.warning(text)

    def error(self, text: str, key: str = "") -> None:
        if not key or self.throttle.ready(key):
            self.logger.error(text)
