"""Fault catalogue, the policy's side (real processes over DDS): a backend that raises, returns
NaN/inf or a wrong shape, or is slower than its chunk. The fault-injection backend wraps the tiny
Octo checkpoint."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import log_text, wait_until
from faults import HOME, ROBOT, diagnostics
from trajectory_msgs.msg import JointTrajectory

POLICY = "vla_policy: policy"


def start(nodes, backend_settings: str):
    bringup, peer, _ = nodes(
        backend="fault_injection",
        policy_overrides={
            "instruction": "reach the red cube",
            "backend_settings": backend_settings,
            "inference_period_s": 0.1,
        },
    )
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=50)
    return bringup, peer


@pytest.mark.parametrize(
    "fault, counter, logged",
    [
        ("raise", "backend_errors", "backend failed, no chunk for this observation: InjectedFault"),
        ("nan", "outputs_rejected", "not publishing: backend output is not finite at point"),
        ("inf", "outputs_rejected", "not publishing: backend output is not finite at point"),
        ("wrong_shape", "outputs_rejected", "not publishing: backend output has joints"),
    ],
)
def test_a_faulty_backend_output_is_never_published_counted_and_the_node_keeps_serving(
    nodes, tmp_path, fault, counter, logged
):
    bringup, peer = start(nodes, f"{{fault: {fault}, every_n: 2}}")
    assert wait_until(lambda: int(diagnostics(peer, POLICY).get(counter, 0)) >= 3 and len(peer.chunks) >= 3, 60), (
        log_text(tmp_path, "vla_policy")
    )
    for msg in peer.chunks:  # every published chunk is whole and finite
        assert list(msg.joint_names) == list(ROBOT.joint_names)
        assert np.all(np.isfinite([p.positions for p in msg.points]))
    values = diagnostics(peer, POLICY)
    assert logged in values["last_fault"], values
    log = log_text(tmp_path, "vla_policy")
    assert logged in log
    assert log.count(logged) < int(values[counter]) or int(values[counter]) <= 3, "the error is not throttled"
    n = len(peer.chunks)
    assert wait_until(lambda: len(peer.chunks) > n + 2, 20), "the node stopped serving"
    assert bringup.dead() == {}


def test_a_backend_slower_than_its_chunk_never_gets_a_stale_chunk_executed(nodes, tmp_path):
    """Inference takes 2.4 s, 3x the chunk's 0.8 s: every chunk is dropped as stale (counted, the
    reason in /diagnostics) and the executor holds."""
    bringup, peer = start(nodes, "{fault: slow, delay_s: 2.4}")
    received_at: list[tuple[float, float]] = []

    def on_chunk(msg: JointTrajectory) -> None:
        received_at.append(
            (peer.node.get_clock().now().nanoseconds * 1e-9, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        )

    peer.node.create_subscription(JointTrajectory, "action_chunk", on_chunk, 10)
    assert wait_until(lambda: int(diagnostics(peer, POLICY).get("chunks_dropped_stale", 0)) >= 2, 60), log_text(
        tmp_path, "vla_policy"
    )
    values = diagnostics(peer, POLICY)
    assert "inference is too slow" in values["last_fault"] and "max_observation_age_s=0.5" in values["last_fault"], (
        values
    )
    assert all(now - stamp <= 0.5 + 0.05 for now, stamp in received_at), received_at  # no stale chunk left the node
    assert wait_until(lambda: diagnostics(peer, "vla_chunk_executor: executor").get("message") == "holding", 10)
    time.sleep(0.2)
    last = np.array([c for _, c in peer.commands[-10:]])
    np.testing.assert_allclose(last, np.repeat(HOME[None], len(last), 0), atol=1e-6)
    assert bringup.dead() == {}
