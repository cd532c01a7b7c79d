"""The no-op backend (benchmarks' stand-in for a model) and the ROS path it measures, over shared memory."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.benchmarks.pipeline import run_case
from vla_ros.core.stage_times import FRAME_TO_CHUNK_STAGES
from vla_ros.core.types import Observation


def test_noop_backend_fits_frames_and_holds_the_joint_state():
    backend = load_backend("noop", None, {"joints": ["a", "b"], "cameras": ["cam"], "horizon": 4, "image_size": 32})
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    chunk = backend.predict(Observation(3.0, {"cam": rgb}, ("b", "a", "x"), np.array([2.0, 1.0, 9.0]), "go"))
    assert chunk.t0_s == 3.0 and chunk.joint_names == ("a", "b")
    np.testing.assert_array_equal(chunk.positions, [[1.0, 2.0]] * 4)
    assert backend.last_inputs["cam"].shape == (32, 32, 3)
    with pytest.raises(BackendError, match="lacks"):
        backend.predict(Observation(3.0, {}, ("a", "b"), np.zeros(2), "go"))


@pytest.mark.parametrize("executor", ["events", "single"])
def test_rgb8_frames_reach_the_policy_node_over_shared_memory_and_come_back_as_chunks(tmp_path, executor):
    result = run_case(
        "shm", "rgb8", frames=8, rate_hz=10.0, log_dir=tmp_path, image_size=224, timeout_s=120.0, executor=executor
    )
    assert result["chunks"] >= 6, result  # best-effort 640x480 frames arrive (over UDP on loopback most are dropped)
    assert 0.0 < result["p50_ms"] < 1000.0
    stages = result["stages_p50_ms"]  # the node's per-stage timing, from its /diagnostics
    assert list(stages) == list(FRAME_TO_CHUNK_STAGES)
    assert all(0.0 <= v < 1000.0 for v in stages.values()), stages
    assert stages["predict"] > 0.0 and stages["receive"] > 0.0, stages  # resizing 640x480 to 224 takes time
