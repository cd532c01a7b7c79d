"""The lifecycle manager's liveness check against a deaf node: its process beats (`~/heartbeat` arrives) in a
primary lifecycle state, but it answers no `get_state`, as a policy process respawned into a stale Fast DDS
shared-memory port did in a 60-minute soak (it sent, it received nothing, for 180 s). Real rclpy nodes over
DDS on loopback and a real process that plays the deaf node's process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import wait_until
from diagnostic_msgs.msg import DiagnosticStatus

from vla_ros.nodes.lifecycle_manager import DEAF_GRACE_S
from vla_ros.nodes.supervision import HEARTBEAT_PERIOD_S, HEARTBEAT_QOS, _start_time

TIMEOUT_S = 1.5  # liveness_timeout_s of the test's manager


@pytest.fixture
def ros(ros_env):
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    rclpy.init(args=[])
    executor = MultiThreadedExecutor(num_threads=4)
    threading.Thread(target=executor.spin, daemon=True).start()
    yield rclpy, executor
    executor.shutdown(timeout_sec=5)
    rclpy.shutdown()


@pytest.fixture
def deaf_process():
    """A process that ignores SIGUSR1 (as a node dumps its stacks and carries on) and lives 60 s at most."""
    code = "import signal, time; signal.signal(signal.SIGUSR1, signal.SIG_IGN); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)  # the handler is set
    yield proc
    proc.kill()
    proc.wait(timeout=5)


def beat_as(node, name: str, process: str, state: str, stop: threading.Event) -> threading.Thread:
    """`/<name>/heartbeat` every HEARTBEAT_PERIOD_S as process `process` in `state`, until `stop` (at most 40 s)."""
    pub = node.create_publisher(DiagnosticStatus, f"/{name}/heartbeat", HEARTBEAT_QOS)

    def loop():
        end = time.monotonic() + 40
        while not stop.wait(HEARTBEAT_PERIOD_S) and time.monotonic() < end:
            pub.publish(DiagnosticStatus(name=f"/{name}", hardware_id=process, message=state))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def manager_for(name: str):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.lifecycle_manager import LifecycleManager

    return LifecycleManager(
        parameter_overrides=[
            Parameter("node_names", value=[name]),
            Parameter("transition_timeout_s", value=1.0),
            Parameter("watch_period_s", value=0.2),
            Parameter("liveness_timeout_s", value=TIMEOUT_S),
            Parameter("kill_unresponsive", value=True),
        ]
    )


@pytest.mark.parametrize("state", ["unconfigured", "configuring"])
def test_a_node_that_beats_but_answers_nothing_is_dumped_and_killed_unless_it_is_in_a_transition(
    ros, deaf_process, state
):
    rclpy, executor = ros
    peer = rclpy.create_node("deaf_peer")
    executor.add_node(peer)
    process = f"{socket.gethostname()}:{deaf_process.pid}:{_start_time(deaf_process.pid)}"
    stop = threading.Event()
    beat_as(peer, "deaf", process, state, stop)
    logs: list[str] = []
    manager = manager_for("deaf")
    log = manager.get_logger()
    error = log.error
    log.error = lambda msg, **kw: (logs.append(msg), error(msg, **kw))  # what it reports, also kept here
    executor.add_node(manager)
    t0 = time.monotonic()
    try:
        if state == "configuring":  # a long transition (a model loading) is not deafness: no action
            assert not wait_until(lambda: deaf_process.poll() is not None, TIMEOUT_S + DEAF_GRACE_S + 3)
            assert manager.unresponsive["deaf"] == 0
            return
        assert wait_until(lambda: deaf_process.poll() is not None, TIMEOUT_S + DEAF_GRACE_S + 5), logs
        found_s = time.monotonic() - t0
    finally:
        stop.set()
    assert deaf_process.returncode == -signal.SIGKILL
    assert manager.unresponsive["deaf"] == 1
    said = " | ".join(logs)
    assert "deaf: unresponsive: its heartbeat comes but it answered no get_state for" in said, said
    assert f"SIGUSR1 to pid {deaf_process.pid}" in said and f"stopped (SIGKILL to pid {deaf_process.pid})" in said
    print(f"\ndeaf node found and killed {found_s:.2f} s after the manager started (liveness_timeout_s {TIMEOUT_S})")
