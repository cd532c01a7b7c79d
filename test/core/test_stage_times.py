"""Per-chunk stage durations and their percentiles (the policy node's frame -> chunk breakdown)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_ros.core.stage_times import FRAME_TO_CHUNK_STAGES, StageTimes


def test_percentiles_per_stage_in_milliseconds():
    times = StageTimes(("receive", "predict"), maxlen=100)
    assert all(math.isnan(v) for v in times.percentiles_ms(50).values())
    for i in range(1, 6):
        times.add((i * 1e-3, i * 2e-3))
    assert len(times) == 5
    assert times.percentiles_ms(50) == pytest.approx({"receive": 3.0, "predict": 6.0})
    assert times.percentiles_ms(100) == pytest.approx({"receive": 5.0, "predict": 10.0})


def test_only_the_newest_chunks_are_kept_and_a_wrong_row_is_refused():
    times = StageTimes(maxlen=3)
    assert times.stages == FRAME_TO_CHUNK_STAGES
    for value in (10.0, 1.0, 2.0, 3.0):
        times.add((value * 1e-3,) * len(FRAME_TO_CHUNK_STAGES))
    np.testing.assert_allclose(list(times.percentiles_ms(100).values()), 3.0)
    with pytest.raises(ValueError, match="stages"):
        times.add((1.0, 2.0))
    times.clear()
    assert len(times) == 0
