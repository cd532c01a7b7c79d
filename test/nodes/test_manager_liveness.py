"""The lifecycle manager's liveness check against deaf nodes: a process that beats (`~/heartbeat` arrives) in a
primary lifecycle state but answers no `get_state`, as policy processes respawned after SIGSTOP + SIGKILL did
in soaks (they sent, they received nothing, for 180 s); and one whose heartbeat says it is deaf to a topic
(`deaf_topics`), replaced once, then not again until a process of the node has heard the topic. Real rclpy
nodes over DDS on loopback and real processes that play the deaf node's processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import wait_until
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

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
def processes():
    """Makes processes that ignore SIGUSR1 (as a node dumps its stacks and carries on) and live 60 s at most."""
    made = []

    def make() -> subprocess.Popen:
        code = "import signal, time; signal.signal(signal.SIGUSR1, signal.SIG_IGN); time.sleep(60)"
        made.append(subprocess.Popen([sys.executable, "-c", code]))
        time.sleep(0.3)  # the handler is set
        return made[-1]

    yield make
    for proc in made:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def deaf_process(processes):
    return processes()


def token(proc: subprocess.Popen) -> str:
    return f"{socket.gethostname()}:{proc.pid}:{_start_time(proc.pid)}"


def beat_as(
    node, name: str, process: str, state: str, stop: threading.Event, values: dict[str, str] | None = None
) -> threading.Thread:
    """`/<name>/heartbeat` every HEARTBEAT_PERIOD_S as process `process` in `state`, with `values` as they are at
    each beat, until `stop` (at most 40 s)."""
    pub = node.create_publisher(DiagnosticStatus, f"/{name}/heartbeat", HEARTBEAT_QOS)
    values = {} if values is None else values

    def loop():
        end = time.monotonic() + 40
        while not stop.wait(HEARTBEAT_PERIOD_S) and time.monotonic() < end:
            kvs = [KeyValue(key=k, value=v) for k, v in dict(values).items()]
            pub.publish(DiagnosticStatus(name=f"/{name}", hardware_id=process, message=state, values=kvs))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def logged_manager(name: str, watch_period_s: float = 0.2):
    """A manager of node `name` and the errors it reports (also logged)."""
    logs: list[str] = []
    manager = manager_for(name, watch_period_s)
    log = manager.get_logger()
    error = log.error
    log.error = lambda msg, **kw: (logs.append(msg), error(msg, **kw))
    return manager, logs


def manager_for(name: str, watch_period_s: float = 0.2):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.lifecycle_manager import LifecycleManager

    return LifecycleManager(
        parameter_overrides=[
            Parameter("node_names", value=[name]),
            Parameter("transition_timeout_s", value=1.0),
            Parameter("watch_period_s", value=watch_period_s),
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
    stop = threading.Event()
    beat_as(peer, "deaf", token(deaf_process), state, stop)
    manager, logs = logged_manager("deaf")
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


def test_a_process_deaf_to_a_topic_is_replaced_once_and_again_only_after_a_process_heard_it(ros, processes):
    rclpy, executor = ros
    peer = rclpy.create_node("deaf_topic_peer")
    executor.add_node(peer)
    manager, logs = logged_manager("policy", watch_period_s=0.0)  # no get_state polls: deaf to a topic only
    executor.add_node(manager)
    first, second = processes(), processes()
    deaf = {"deaf_topics": "/cam"}
    stop = threading.Event()
    try:
        beat_as(peer, "policy", token(first), "active", stop, deaf)
        t0 = time.monotonic()
        assert wait_until(lambda: first.poll() is not None, TIMEOUT_S + 3), logs
        replaced_s = time.monotonic() - t0
        stop.set()
        assert first.returncode == -signal.SIGKILL and manager.unresponsive["policy"] == 1
        assert any("policy: unresponsive: deaf to /cam: matched with a publisher" in m for m in logs), logs

        stop = threading.Event()
        values = dict(deaf)
        beat_as(peer, "policy", token(second), "active", stop, values)  # its successor: deaf to it too
        again = "policy: deaf to /cam again, as the process replaced for it was: its publisher sends nothing"
        assert wait_until(lambda: any(again in m for m in logs), 3), logs
        assert not wait_until(lambda: second.poll() is not None, TIMEOUT_S + 1.5)  # reported, not replaced
        assert sum(again in m for m in logs) == 1  # once per process

        values.clear()
        values["heard_topics"] = "/cam"  # the topic delivers again ...
        time.sleep(4 * HEARTBEAT_PERIOD_S)
        values.clear()
        values.update(deaf)  # ... then this process goes deaf to it: replaced, as a first time
        assert wait_until(lambda: second.poll() is not None, TIMEOUT_S + 3), logs
        assert second.returncode == -signal.SIGKILL and manager.unresponsive["policy"] == 2
        assert sum("policy: unresponsive: deaf to /cam: matched with a publisher" in m for m in logs) == 2, logs
    finally:
        stop.set()
    print(f"\nprocess deaf to a topic replaced {replaced_s:.2f} s after its first heartbeat (liveness {TIMEOUT_S} s)")
