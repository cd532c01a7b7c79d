"""The bounded queue between subscription callbacks and the recorder's writer thread.

`offer()` never blocks and never waits for the writer: it takes the lock for a deque append.
Camera frames (`frame=True`) are bounded by `max_frames` and the rest by `max_messages`; an item
over its bound is dropped and counted per topic, so a slow disk or a starved writer loses frames,
never a callback's time, and joint states and commands keep their room when frames pile up.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


class DropQueue:
    def __init__(self, max_frames: int = 64, max_messages: int = 4000):
        self.max_frames = max_frames
        self.max_messages = max_messages
        self._items: deque[tuple[str, bool, Any]] = deque()
        self._frames = 0
        self._cv = threading.Condition()
        self.dropped: Counter[str] = Counter()  # topic -> items dropped
        self.offered = 0
        self.high_water = 0  # most items queued at once

    def offer(self, topic: str, item: Any, frame: bool = False, force: bool = False) -> bool:
        """Queue `item`; False (and counted in `dropped[topic]`) when its bound is reached. `force`
        (control requests) always queues."""
        with self._cv:
            self.offered += 1
            full = (frame and self._frames >= self.max_frames) or len(self._items) >= self.max_messages
            if full and not force:
                self.dropped[topic] += 1
                return False
            self._items.append((topic, frame, item))
            self._frames += frame
            self.high_water = max(self.high_water, len(self._items))
            self._cv.notify()
            return True

    def take(self, timeout_s: float) -> tuple[str, Any] | None:
        """The oldest (topic, item), or None after `timeout_s` with nothing queued."""
        with self._cv:
            if not self._items and not self._cv.wait_for(lambda: bool(self._items), timeout_s):
                return None
            topic, frame, item = self._items.popleft()
            self._frames -= frame
            return topic, item

    def __len__(self) -> int:
        with self._cv:
            return len(self._items)
