"""A tiny π₀.5 (adaptive-RMSNorm expert, state in the prompt) through the real policy and executor nodes."""

import numpy as np
import pytest
from conftest import log_text, wait_until


@pytest.fixture(scope="module")
def tiny_pi05_checkpoint(tmp_path_factory):
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny_pi05"), JOINT_NAMES, ("front", "wrist"), horizon=8, dt_s=0.1, variant="pi05"
    )


def test_a_tiny_pi05_runs_through_the_real_nodes_guided(nodes, tiny_pi05_checkpoint, tmp_path):
    """backend:=pi0 on a π₀.5 folder (openpi layout): chunks flow and the executor tracks them (guided blending)."""
    from diagnostic_msgs.msg import DiagnosticStatus

    bringup, peer, _ = nodes(
        policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.1},
        executor_overrides={"blend_mode": "guided"},
        backend="pi0",
        model_path=tiny_pi05_checkpoint,
    )
    statuses = []
    peer.node.create_subscription(DiagnosticStatus, "/vla_chunk_executor/status", statuses.append, 50)
    peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
    peer.start_robot(rate_hz=50)
    assert wait_until(lambda: len(peer.chunks) > 5 and any(s.message == "tracking" for s in statuses), 90), log_text(
        tmp_path, "vla_policy"
    )[-3000:]
    msg = peer.chunks[-1]
    assert list(msg.joint_names) == list(peer.joint_names) and len(msg.points) == 8
    assert np.all(np.isfinite([p.positions for p in msg.points]))
    assert bringup.dead() == {}
