"""When the policy node starts the next inference: from measured latency and the plan left.

A chunk takes `latency` to arrive (waiting for fresh frames, inference, transport), so the next
inference must start at least `latency + margin` before the running plan ends, or the arm runs
out of plan and holds. It also starts at least every `period_s` so the policy reacts to what the
cameras see. Latency is estimated as a high percentile of the recent measurements, so the
schedule adapts to a slower model, a loaded CPU or a GPU warming up.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyEstimate:
    """Rolling estimate (seconds): the `percentile` of the last `window` measurements."""

    def __init__(self, window: int = 50, percentile: float = 90.0):
        self.samples: deque[float] = deque(maxlen=window)
        self.percentile = percentile

    def add(self, seconds: float) -> None:
        self.samples.append(float(seconds))

    def value(self, default: float = 0.0) -> float:
        return float(np.percentile(self.samples, self.percentile)) if self.samples else default


class InferenceScheduler:
    def __init__(self, period_s: float, margin_s: float = 0.05):
        if period_s <= 0 or margin_s < 0:
            raise ValueError(f"period_s must be > 0 and margin_s >= 0, got {period_s}, {margin_s}")
        self.period_s = period_s
        self.margin_s = margin_s
        self.latency = LatencyEstimate()  # inference start -> chunk published
        self.plan_end_s: float | None = None  # time of the last point of the last published chunk

    def on_cycle(self, latency_s: float, chunk_end_s: float | None) -> None:
        """One inference cycle took `latency_s`; its chunk (if published) ends at `chunk_end_s`."""
        self.latency.add(latency_s)
        if chunk_end_s is not None:
            self.plan_end_s = chunk_end_s

    def next_start_s(self, last_start_s: float) -> float:
        """Clock time (same clock as the chunk stamps) to start the next inference."""
        periodic = last_start_s + self.period_s
        if self.plan_end_s is None:
            return periodic
        return min(periodic, self.plan_end_s - self.latency.value() - self.margin_s)
