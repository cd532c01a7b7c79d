"""SIGKILL of the lifecycle manager (issue 23), real processes over DDS, the task set only through the policy's
parameter service (as `ros2 param set` does), never in launch parameters.

What must happen: the managed nodes do not depend on the manager to run, so the policy keeps inferring for its
task and the executor keeps tracking, within the limits, with no lifecycle transition; the bring-up (respawn)
starts a new manager, which adopts the running nodes as they are (no configure, activate or deactivate: an
active node is past every startup step) and takes the policy's task state from its latched
`~/instruction_state`, so the task is neither lost nor undone: a policy killed after the manager's restart
resumes it."""

from __future__ import annotations

import os
import signal
import time

from conftest import log_text, wait_until
from faults import HOME, assert_within_limits, diagnostics

POLICY, EXECUTOR, MANAGER = "vla_policy: policy", "vla_chunk_executor: executor", "vla_lifecycle_manager: lifecycle"
TASK = "reach the red cube"
RESUME_BOUND_S = 30.0  # a killed policy -> first chunk of its respawn (test_restarts.py)


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def newer_status(peer, name: str, after: int) -> dict[str, str]:
    """The newest /diagnostics values of `name` among the messages received after the first `after`, or {}."""
    for msg in reversed(list(peer.diagnostics)[after:]):
        for status in msg.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values} | {"message": status.message}
    return {}


def test_a_killed_lifecycle_manager_leaves_the_task_running_and_its_respawn_adopts_the_nodes_and_keeps_the_task(
    nodes, tmp_path
):
    bringup, peer, specs = nodes(respawn=True, executor_overrides={"diagnostics_period_s": 0.2})
    assert "instruction" not in specs[1].parameters  # the task comes through the parameter service only
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=30, max_s=110)
    assert peer.wait_active("vla_chunk_executor", "vla_policy", timeout_s=60)
    assert peer.set_param("vla_policy", "instruction", TASK).successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30), log_text(tmp_path, "vla_policy")
    assert wait_until(lambda: diagnostics(peer, MANAGER).get("vla_policy.held_instruction") == TASK, 5)
    policy_pid, executor_pid = bringup.procs["vla_policy"].pid, bringup.procs["vla_chunk_executor"].pid

    # the manager dies: the task runs on, the arm is commanded within the limits, no node changes state
    t_kill, killed_at = time.monotonic(), stamp_s(peer.now_msg())
    n_diag = len(peer.diagnostics)
    os.kill(bringup.procs["vla_lifecycle_manager"].pid, signal.SIGKILL)
    assert wait_until(lambda: bringup.restarts.get("vla_lifecycle_manager") == 1, 5)
    time.sleep(1.5)
    assert sum(stamp_s(m.header.stamp) > killed_at for m in list(peer.chunks)) >= 3, "the policy stopped its task"
    assert newer_status(peer, EXECUTOR, n_diag)["message"] == "tracking"

    # the new manager adopts both nodes as they are and holds the policy's task state
    def adopted() -> bool:
        values = newer_status(peer, MANAGER, n_diag)
        return values.get("vla_policy.held_instruction") == TASK and values.get("vla_policy.state") == "active"

    assert wait_until(adopted, 30), log_text(tmp_path, "vla_lifecycle_manager")
    assert wait_until(lambda: log_text(tmp_path, "vla_lifecycle_manager").count("startup done") == 2, 30)
    manager_log = log_text(tmp_path, "vla_lifecycle_manager")
    assert "vla_policy: already active: no configure (adopted as it is)" in manager_log, manager_log
    assert "startup failed" not in manager_log, manager_log
    assert peer.lifecycle_state("vla_policy") == peer.lifecycle_state("vla_chunk_executor") == "active"
    assert (bringup.procs["vla_policy"].pid, bringup.procs["vla_chunk_executor"].pid) == (policy_pid, executor_pid)
    policy = diagnostics(peer, POLICY)
    assert policy["instruction"] == TASK and policy["restarts_seen"] == "0", policy
    assert peer.lifecycle_state("vla_policy") == "active"
    commands = [(t, c) for t, c in list(peer.commands) if t > t_kill]
    assert len(commands) > 100
    assert_within_limits(commands)
    executor = diagnostics(peer, EXECUTOR)
    assert int(executor.get("entered_stopping", 0)) == 0 and int(executor.get("policy_unresponsive", 0)) == 0

    # the respawned manager kept the task: a policy killed now resumes it from fresh observations
    killed_at = stamp_s(peer.now_msg())
    os.kill(bringup.procs["vla_policy"].pid, signal.SIGKILL)
    assert wait_until(lambda: bringup.restarts.get("vla_policy") == 1, 5)
    assert wait_until(
        lambda: any(stamp_s(m.header.stamp) > killed_at + 0.5 for m in list(peer.chunks)), RESUME_BOUND_S
    ), log_text(tmp_path, "vla_lifecycle_manager")
    assert wait_until(lambda: diagnostics(peer, POLICY).get("restarts_seen") == "1", 5)
    policy = diagnostics(peer, POLICY)
    assert policy["instruction"] == TASK and f"resumed '{TASK}'" in policy["task_after_restart"], policy
    assert set(bringup.dead()) == set()
