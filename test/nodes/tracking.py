"""Shared by the node tests that run a model closed loop: the nodes brought up with a task, the robot played at
home until the executor tracks the policy's chunks."""

from __future__ import annotations

from conftest import log_text
from faults import HOME
from harness import wait_until


def bring_up_tracking(nodes, inference_period_s: float, timeout_s: float = 90.0, executor_overrides=None, **start):
    """The nodes (the `nodes` fixture; `start`: its other arguments, e.g. backend and model_path) with the
    instruction 'reach the red cube', the robot at home publishing at 50 Hz, once more than five chunks came and
    the executor is tracking one (else the test fails with the end of the policy's log): (bringup, peer, the
    executor's status messages, still being collected)."""
    from diagnostic_msgs.msg import DiagnosticStatus

    bringup, peer, _ = nodes(
        policy_overrides={"instruction": "reach the red cube", "inference_period_s": inference_period_s},
        executor_overrides=executor_overrides,
        **start,
    )
    statuses = []
    peer.node.create_subscription(DiagnosticStatus, "/vla_chunk_executor/status", statuses.append, 50)
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=50)
    tracked = wait_until(lambda: len(peer.chunks) > 5 and any(s.message == "tracking" for s in statuses), timeout_s)
    assert tracked, f"no chunks tracked; policy log:\n{log_text(bringup.log_dir.parent, 'vla_policy')[-3000:]}"
    return bringup, peer, statuses
