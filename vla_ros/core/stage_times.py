"""Where the time from a camera frame to its action chunk goes: per-chunk stage durations and their percentiles.

The policy node records, for every chunk it publishes, how long each stage took (seconds) and
reports the percentiles in /diagnostics (`stage_<name>_p50_ms`, `..._p99_ms`); the pipeline
benchmark prints them beside its end-to-end figure. ROS-free.
"""

from __future__ import annotations

from collections import deque

import numpy as np

FRAME_TO_CHUNK_STAGES = ("receive", "convert", "wait", "predict", "message", "publish")
"""The policy node's stages, in order: frame stamp -> image callback entered (publisher's serialisation,
DDS, the node's deserialisation and executor); conversion to RGB and storing the frame; stored -> the
inference thread holds the observation; the backend's `predict` (resizing included) and the output
checks; building the chunk message; publishing it."""


class StageTimes:
    """The newest `maxlen` chunks' stage durations (seconds), for percentiles. Not thread-safe: one writer."""

    def __init__(self, stages: tuple[str, ...] = FRAME_TO_CHUNK_STAGES, maxlen: int = 10_000):
        self.stages = tuple(stages)
        self._rows: deque[tuple[float, ...]] = deque(maxlen=maxlen)

    def add(self, durations_s: tuple[float, ...]) -> None:
        """One chunk's durations (seconds), one per stage in `stages` order."""
        if len(durations_s) != len(self.stages):
            raise ValueError(f"{len(durations_s)} durations for {len(self.stages)} stages {list(self.stages)}")
        self._rows.append(tuple(durations_s))

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def percentiles_ms(self, q: float) -> dict[str, float]:
        """Stage name -> the q-th percentile of its durations in milliseconds (NaN when nothing was recorded)."""
        rows = list(self._rows)
        if not rows:
            return {s: float("nan") for s in self.stages}
        values = np.percentile(np.asarray(rows) * 1e3, q, axis=0)
        return dict(zip(self.stages, (float(v) for v in values)))
