"""A tiny OpenVLA (real checkpoint layout, random weights) through the real policy and executor nodes."""

import numpy as np
import pytest
from conftest import log_text, wait_until
from tracking import bring_up_tracking


@pytest.fixture(scope="module")
def tiny_openvla_checkpoint(tmp_path_factory):
    from vla_ros.backends.openvla.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_openvla"), JOINT_NAMES, camera="front", dt_s=0.2)


def test_a_tiny_openvla_runs_through_the_real_nodes(nodes, tiny_openvla_checkpoint):
    """backend:=openvla: 1-point chunks (one action per forward) flow and the executor tracks them."""
    bringup, peer, _ = bring_up_tracking(nodes, 0.2, backend="openvla", model_path=tiny_openvla_checkpoint)
    msg = peer.chunks[-1]
    assert list(msg.joint_names) == list(peer.joint_names) and len(msg.points) == 1
    offset = msg.points[0].time_from_start.sec + msg.points[0].time_from_start.nanosec * 1e-9
    assert offset == pytest.approx(0.2, abs=1e-6)
    assert np.all(np.isfinite(msg.points[0].positions))
    assert bringup.dead() == {}


@pytest.fixture(scope="module")
def tiny_oft_checkpoint(tmp_path_factory):
    from vla_ros.backends.openvla.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny_openvla_oft"),
        JOINT_NAMES,
        dt_s=0.1,
        oft=True,
        chunk_size=4,
        wrist_cameras=("wrist",),
    )


def test_a_tiny_openvla_oft_runs_through_the_real_nodes(nodes, tiny_oft_checkpoint):
    """OFT: chunks of 4 points 0.1 s apart from both cameras and the joint state."""
    bringup, peer, _ = nodes(
        policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.2},
        backend="openvla",
        model_path=tiny_oft_checkpoint,
    )
    peer.start_robot(rate_hz=50)
    assert wait_until(lambda: len(peer.chunks) > 3, 90), (
        f"no OFT chunks; policy log:\n{log_text(bringup.log_dir.parent, 'vla_policy')}"
    )
    msg = peer.chunks[-1]
    offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(offsets, [0.1, 0.2, 0.3, 0.4], atol=1e-6)
    assert np.all(np.isfinite([p.positions for p in msg.points]))
    assert bringup.dead() == {}
