"""Issue 23 over DDS with real processes: a killed policy resumes its task (set only through the parameter
service, never in launch parameters) from observations taken after the restart; with resume_after_restart false
it holds until a new instruction; a cleared task stays cleared; a policy that stops answering (a backend holding
Python's interpreter lock) is found by its heartbeat, its stacks dumped, and restarted; the executor holds as soon
as the policy's heartbeat has stopped for its policy_heartbeat_timeout_s; a frozen executor is found and restarted
the same way.

Each test prints the measured bounds (kill -> first chunk, hang -> restart) for docs/reliability.md."""

from __future__ import annotations

import os
import signal
import time

from conftest import log_text, wait_until
from faults import HOME, diagnostics

from vla_ros.nodes.policy_cameras import CAMERA_SILENT_S

POLICY, EXECUTOR = "vla_policy: policy", "vla_chunk_executor: executor"
TASK = "reach the red cube"
FAST = {"diagnostics_period_s": 0.2}
RESUME_BOUND_S = 30.0  # kill -> first chunk of the respawned policy (its process start and model load included)


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def start(nodes, **kwargs):
    bringup, peer, specs = nodes(respawn=True, executor_overrides=FAST, **kwargs)
    assert "instruction" not in specs[1].parameters  # the task comes through the parameter service only
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=30, max_s=90)
    assert peer.wait_active("vla_policy", timeout_s=60)
    return bringup, peer


def kill_policy(bringup, peer, restarts: int) -> tuple[float, float]:
    """SIGKILL the policy process; (its ROS time, monotonic time) of the kill, once the respawn has started."""
    killed_at, t0 = stamp_s(peer.now_msg()), time.monotonic()
    os.kill(bringup.procs["vla_policy"].pid, signal.SIGKILL)
    assert wait_until(lambda: bringup.restarts.get("vla_policy") == restarts, 5)
    return killed_at, t0


def chunks_after(peer, stamp: float) -> list:
    return [m for m in list(peer.chunks) if stamp_s(m.header.stamp) > stamp]


def test_a_killed_policy_resumes_its_task_from_fresh_observations_and_a_cleared_task_stays_cleared(nodes, tmp_path):
    bringup, peer = start(nodes)
    assert peer.set_param("vla_policy", "instruction", TASK).successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30), log_text(tmp_path, "vla_policy")

    killed_at, t0 = kill_policy(bringup, peer, 1)
    assert wait_until(lambda: chunks_after(peer, killed_at), RESUME_BOUND_S), log_text(tmp_path, "vla_policy")
    resumed_s = time.monotonic() - t0
    first = chunks_after(peer, killed_at)[0]
    assert stamp_s(first.header.stamp) > killed_at  # from an observation taken after the restart
    assert wait_until(lambda: diagnostics(peer, POLICY).get("restarts_seen") == "1", 5)
    diag = diagnostics(peer, POLICY)
    assert diag["instruction"] == TASK and f"resumed '{TASK}'" in diag["task_after_restart"], diag
    print(f"\nkill -> first chunk of the respawned policy: {resumed_s:.2f} s")

    res = peer.trigger("/vla_policy/clear_task")
    assert res.success and TASK in res.message
    cleared_at = stamp_s(peer.now_msg())
    time.sleep(0.5)  # a chunk inferred before the clear may still arrive
    killed_at, t0 = kill_policy(bringup, peer, 2)
    assert wait_until(lambda: diagnostics(peer, POLICY).get("restarts_seen") == "2", RESUME_BOUND_S)
    assert peer.wait_active("vla_policy", timeout_s=30)
    time.sleep(2.0)  # an active policy with a task would have published several chunks by now (period 0.2 s)
    assert not chunks_after(peer, cleared_at + 0.5), "a cleared task came back after a restart"
    diag = diagnostics(peer, POLICY)
    assert diag["instruction"] == "" and "no task to resume" in diag["task_after_restart"], diag
    manager = diagnostics(peer, "vla_lifecycle_manager: lifecycle")
    assert manager["vla_policy.restarts"] == "2" and manager["vla_policy.held_instruction"] == ""
    assert set(bringup.dead()) == set()


def test_with_resume_after_restart_false_a_restarted_policy_waits_for_a_new_instruction(nodes, tmp_path):
    bringup, peer = start(nodes, policy_overrides={"resume_after_restart": False})
    assert peer.set_param("vla_policy", "instruction", TASK).successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30), log_text(tmp_path, "vla_policy")
    killed_at, _ = kill_policy(bringup, peer, 1)
    assert wait_until(lambda: diagnostics(peer, POLICY).get("restarts_seen") == "1", RESUME_BOUND_S)
    assert peer.wait_active("vla_policy", timeout_s=30)
    time.sleep(2.0)
    assert not chunks_after(peer, killed_at), "resumed although resume_after_restart is false"
    assert "not resumed (resume_after_restart is false)" in diagnostics(peer, POLICY)["task_after_restart"]
    assert peer.set_param("vla_policy", "instruction", TASK).successful  # a new instruction: chunks again
    assert wait_until(lambda: chunks_after(peer, killed_at), 10)


def test_a_hung_policy_is_found_by_its_heartbeat_dumped_and_restarted_while_the_arm_holds(nodes, tmp_path):
    timeout_s = 2.0
    bringup, peer = start(
        nodes,
        backend="fault_injection",
        policy_overrides={"backend_settings": "{fault: hang, every_n: 4}"},  # the 3rd inference never returns
        manager_overrides={"liveness_timeout_s": timeout_s},
    )
    assert peer.set_param("vla_policy", "instruction", TASK).successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30), log_text(tmp_path, "vla_policy")
    hung_since = time.monotonic()  # the next inference hangs (an upper bound of its start)
    assert not wait_until(lambda: len(peer.chunks) > 2, 1.0)  # hung: no chunk, no answer
    n_chunks = len(peer.chunks)
    # the arm holds once the policy's heartbeat has stopped for the executor's policy_heartbeat_timeout_s (1 s)
    assert wait_until(lambda: diagnostics(peer, EXECUTOR).get("message") == "policy_unresponsive", 1.5)
    held_s = time.monotonic() - hung_since
    assert diagnostics(peer, EXECUTOR)["hold_reason"].startswith("policy unresponsive: no heartbeat for")
    assert wait_until(lambda: bringup.restarts.get("vla_policy") == 1, timeout_s + 5)
    restarted_s = time.monotonic() - hung_since
    manager = log_text(tmp_path, "vla_lifecycle_manager")
    assert "vla_policy: unresponsive: no heartbeat for" in manager and "stopped (SIGKILL" in manager, manager
    policy_log = log_text(tmp_path, "vla_policy")
    assert "hold_the_interpreter" in policy_log and "most recent call first" in policy_log  # its stacks (SIGUSR1)
    assert restarted_s <= timeout_s + 2.0, restarted_s
    print(f"\nhang -> executor holding: {held_s:.2f} s; -> respawn: {restarted_s:.2f} s (liveness {timeout_s} s)")
    assert wait_until(lambda: len(peer.chunks) > n_chunks, RESUME_BOUND_S)  # the new process resumes the task


def test_a_stopped_executor_is_found_by_its_heartbeat_and_restarted(nodes, tmp_path):
    """The executor beats too: frozen (SIGSTOP), the manager finds it within liveness_timeout_s and respawn
    replaces it; the new executor commands again."""
    timeout_s = 2.0
    bringup, peer = start(nodes, manager_overrides={"liveness_timeout_s": timeout_s})
    manager = "vla_lifecycle_manager: lifecycle"
    age = "vla_chunk_executor.heartbeat_age_s"
    assert wait_until(lambda: diagnostics(peer, manager).get(age) not in (None, "none"), 10)
    assert wait_until(lambda: len(peer.commands) > 10, 10)
    stopped_at = time.monotonic()
    os.kill(bringup.procs["vla_chunk_executor"].pid, signal.SIGSTOP)
    assert wait_until(lambda: bringup.restarts.get("vla_chunk_executor") == 1, timeout_s + 5)
    restarted_s = time.monotonic() - stopped_at
    log = log_text(tmp_path, "vla_lifecycle_manager")
    assert "vla_chunk_executor: unresponsive: no heartbeat for" in log and "stopped (SIGKILL" in log, log
    assert peer.wait_active("vla_chunk_executor", timeout_s=30)
    n_commands = len(peer.commands)
    assert wait_until(lambda: len(peer.commands) > n_commands + 10, 10)
    print(f"\nexecutor stopped -> respawn: {restarted_s:.2f} s (liveness {timeout_s} s)")


def test_a_policy_deaf_to_its_matched_cameras_is_replaced_once_then_their_publisher_is_reported(nodes, tmp_path):
    """The camera publishers stay matched but send nothing, which is what a policy deaf to them sees (one soak
    respawn was): the policy says so in its heartbeat, active or not (it is deactivated here, as between
    episodes), and the manager replaces it after liveness_timeout_s. The new process hears nothing either, so
    the publisher is reported and the policy is not replaced again; no chunk meanwhile (the arm holds). Frames
    again: the new process resumes the task."""
    timeout_s = 2.0
    manager_diag = "vla_lifecycle_manager: lifecycle"
    bringup, peer = start(nodes, manager_overrides={"liveness_timeout_s": timeout_s})
    assert peer.set_param("vla_policy", "instruction", TASK).successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30), log_text(tmp_path, "vla_policy")

    peer.publish_images = False
    silenced_at, t0 = stamp_s(peer.now_msg()), time.monotonic()
    assert peer.change_state("vla_policy", "deactivate")
    assert wait_until(lambda: bringup.restarts.get("vla_policy") == 1, CAMERA_SILENT_S + 1 + timeout_s + 5)
    replaced_s = time.monotonic() - t0
    manager = log_text(tmp_path, "vla_lifecycle_manager")
    cameras = "/camera/image_raw, /wrist_camera/image_raw"
    assert f"vla_policy: unresponsive: deaf to {cameras}: matched with a publisher" in manager, manager
    assert "its threads' stacks are in its log" in manager and "stopped (SIGKILL" in manager

    assert peer.wait_active("vla_policy", timeout_s=30)
    again = f"vla_policy: deaf to {cameras} again, as the process replaced for it was: its publisher sends nothing"
    assert wait_until(lambda: again in log_text(tmp_path, "vla_lifecycle_manager"), CAMERA_SILENT_S + 5)
    assert wait_until(lambda: "send nothing" in diagnostics(peer, manager_diag)["message"], 3)  # published at 1 Hz
    assert not wait_until(lambda: bringup.restarts.get("vla_policy") != 1, timeout_s + 2)  # not replaced again
    assert not chunks_after(peer, silenced_at + 1.0), "a chunk without fresh frames"

    peer.publish_images = True
    heard_at = stamp_s(peer.now_msg())
    assert wait_until(lambda: chunks_after(peer, heard_at), 15), log_text(tmp_path, "vla_policy")
    assert wait_until(lambda: diagnostics(peer, manager_diag).get("vla_policy.deaf_topics") == "", 5)
    assert diagnostics(peer, POLICY)["instruction"] == TASK and bringup.restarts.get("vla_policy") == 1
    print(f"\ncameras silent -> deaf policy replaced: {replaced_s:.2f} s (liveness {timeout_s} s)")
