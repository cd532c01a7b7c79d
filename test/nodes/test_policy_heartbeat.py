"""The chunk executor holds when the policy's heartbeat stops (issue 23, part 3), over DDS with a real executor
process: the test's node plays the policy (its `/vla_policy/heartbeat` and its chunks) and the robot (joint
states). The hung real policy process (the manager's restart) is test_restarts.py's hang test."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import Peer, log_text, wait_until
from diagnostic_msgs.msg import DiagnosticStatus
from faults import HOME, ROBOT, assert_within_limits, diagnostics, trajectory
from trajectory_msgs.msg import JointTrajectory

from vla_ros.bringup import Bringup
from vla_ros.launch_description import node_specs
from vla_ros.nodes.supervision import HEARTBEAT_PERIOD_S, HEARTBEAT_QOS
from vla_ros.params import EXECUTOR as EXECUTOR_SCHEMA

EXECUTOR = "vla_chunk_executor: executor"
TIMEOUT_S = next(p.default for p in EXECUTOR_SCHEMA if p.name == "policy_heartbeat_timeout_s")  # the default
DIAG_PERIOD_S = 0.1


class FakePolicy:
    """The policy's heartbeat from the test's node, every HEARTBEAT_PERIOD_S while `beating` (bounded: 60 s)."""

    def __init__(self, node):
        self.pub = node.create_publisher(DiagnosticStatus, "/vla_policy/heartbeat", HEARTBEAT_QOS)
        self.beating = threading.Event()
        self.last_beat = 0.0  # monotonic time of the last heartbeat sent
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        end = time.monotonic() + 60
        while not self._stop.wait(HEARTBEAT_PERIOD_S) and time.monotonic() < end:
            if self.beating.is_set():
                self.pub.publish(DiagnosticStatus(name="/vla_policy", hardware_id="test:1:1", message="active"))
                self.last_beat = time.monotonic()

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def executor_alone(ros_env, tmp_path):
    """The chunk executor process (sim robot's parameters, policy_heartbeat_timeout_s at its default) and a
    lifecycle manager managing only it; the test's Peer."""
    specs = node_specs(
        "sim",
        use_sim=False,
        overrides={
            "vla_chunk_executor": {"diagnostics_period_s": DIAG_PERIOD_S},
            "vla_lifecycle_manager": {"node_names": ["vla_chunk_executor"]},
        },
    )
    specs = [s for s in specs if s.name in ("vla_chunk_executor", "vla_lifecycle_manager")]
    bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env)
    bringup.start()
    peer = Peer(tuple(specs[0].parameters["joint_names"]))
    policy = FakePolicy(peer.node)
    yield bringup, peer, policy
    policy.close()
    peer.close()
    bringup.stop()


def state(peer) -> str | None:
    return diagnostics(peer, EXECUTOR).get("message")


def counter(peer, name: str) -> int:
    return int(diagnostics(peer, EXECUTOR).get(name, 0))


def send_until(peer, pub, points, done, tries: int = 3, wait_s: float = 1.0) -> bool:
    """Publish a chunk of `points` (stamped now) until `done()` (a first sample can be lost while DDS
    discovery completes), at most `tries` times, `wait_s` apart."""
    for _ in range(tries):
        pub.publish(trajectory(peer, points))
        if wait_until(done, wait_s):
            return True
    return False


def moves_since(peer, t0: float) -> float:
    """Largest change of any joint command after monotonic time t0 (radians)."""
    q = np.array([c for t, c in list(peer.commands) if t > t0])
    return float(np.abs(q - q[0]).max()) if len(q) > 1 else 0.0


def test_the_executor_holds_when_the_policy_heartbeat_stops_and_runs_only_a_fresh_chunk_once_it_beats_again(
    executor_alone, tmp_path
):
    bringup, peer, policy = executor_alone
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = HOME.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100, max_s=60)
    policy.beating.set()
    assert peer.wait_active("vla_chunk_executor", timeout_s=30)
    assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 20)
    assert wait_until(lambda: diagnostics(peer, EXECUTOR).get("policy_heartbeat_age_s", "none") != "none", 5)

    # a 6-s plan, slowly out along joint 0: it would run long after the heartbeat stops
    slow = [HOME + np.r_[0.004 * (i + 1), np.zeros(6)] for i in range(60)]
    assert send_until(peer, pub, slow, lambda: state(peer) == "tracking"), log_text(tmp_path, "vla_chunk_executor")
    time.sleep(0.5)
    holds = counter(peer, "policy_unresponsive")
    policy.beating.clear()  # the policy stops answering
    silent_from = policy.last_beat
    assert wait_until(lambda: state(peer) == "policy_unresponsive", TIMEOUT_S + 1.0), diagnostics(peer, EXECUTOR)
    held_after_s = time.monotonic() - silent_from
    values = diagnostics(peer, EXECUTOR)
    assert TIMEOUT_S - HEARTBEAT_PERIOD_S <= held_after_s <= TIMEOUT_S + 4 * DIAG_PERIOD_S + 0.3, held_after_s
    assert values["hold_reason"].startswith("policy unresponsive: no heartbeat for"), values
    assert int(values["policy_unresponsive"]) == holds + 1
    print(f"\nlast heartbeat -> executor holding: {held_after_s:.2f} s (policy_heartbeat_timeout_s {TIMEOUT_S:g})")

    # it decelerates to rest within the limits and stays there, well short of the plan's end
    time.sleep(1.0)
    t_rest = time.monotonic()
    time.sleep(0.5)
    assert moves_since(peer, t_rest) < 1e-9
    assert peer.commands[-1][1][0] < slow[-1][0] - 0.05
    assert_within_limits([(t, c) for t, c in peer.commands if t > silent_from])

    # a chunk while the policy is silent is refused, with the reason
    refused = counter(peer, "rejected_policy_unresponsive")
    away = [HOME + np.r_[0.1, np.zeros(6)]] * 10
    assert send_until(peer, pub, away, lambda: counter(peer, "rejected_policy_unresponsive") > refused)
    time.sleep(0.3)
    assert moves_since(peer, t_rest) < 1e-9 and state(peer) == "policy_unresponsive"
    log = log_text(tmp_path, "vla_chunk_executor")
    assert "policy unresponsive: no heartbeat for" in log and "rejected chunk: policy unresponsive" in log, log[-2000:]

    # heartbeats again: the dropped plan does not come back; a fresh chunk runs
    policy.beating.set()
    assert wait_until(lambda: state(peer) == "holding", 3), diagnostics(peer, EXECUTOR)
    t_back = time.monotonic()
    time.sleep(0.5)
    assert moves_since(peer, t_back) < 1e-9
    assert "policy heartbeat back" in log_text(tmp_path, "vla_chunk_executor")
    here = peer.commands[-1][1]
    fresh = [here + np.r_[0.01 * (i + 1), np.zeros(6)] for i in range(10)]
    assert send_until(peer, pub, fresh, lambda: moves_since(peer, t_back) > 0.05, wait_s=2.0)
    assert_within_limits([(t, c) for t, c in peer.commands if t > t_back])
    assert bringup.dead() == {}


@pytest.mark.parametrize("stream_plan", [False, True])
def test_the_core_drops_the_plan_and_stops_at_rest_when_the_policy_falls_silent(stream_plan):
    """ROS-free, both command paths (per tick, and joint_trajectory_plan's streamed plans): the hold comes at
    the timeout on the steady clock, whatever ROS time does, ends at rest short of the plan, and a chunk is
    refused until a heartbeat comes back."""
    from vla_ros.core.executor import ExecutorCore, ExecutorSettings
    from vla_ros.core.safety import ChunkRejected
    from vla_ros.core.types import ActionChunk

    names = tuple(ROBOT.joint_names)
    core = ExecutorCore(ROBOT.limits, ExecutorSettings(stream_plan=stream_plan, policy_heartbeat_timeout_s=1.0))
    if stream_plan:
        core.stream.clock = lambda: 0.0  # deterministic joins
    core.activate()
    core.on_joint_state(0.0, HOME)
    core.on_policy_heartbeat(100.0)  # steady clock: 100 s ahead of ROS time
    out = np.linspace(HOME, HOME + np.r_[0.6, np.zeros(6)], 60)  # 6 s along joint 0
    core.on_chunk(ActionChunk(0.0, 0.1, names, out), 0.0)
    states, q = [], []
    for k in range(1, 400):  # 4 s at 100 Hz; joint states follow the commands
        t = k * 0.01
        command = core.tick(t, elapsed_s=0.01, steady_s=100.0 + t)
        core.on_joint_state(t, command.positions)
        states.append(command.state)
        q.append(command.positions)
    first_hold = states.index("policy_unresponsive")
    assert set(states[:first_hold]) == {"tracking"} and set(states[first_hold:]) == {"policy_unresponsive"}
    # 1.0 s after the last heartbeat; a streamed stop takes over at its join, a few ticks ahead (plan_start_delay_s)
    assert 99 <= first_hold <= (110 if stream_plan else 101), first_hold
    assert np.abs(q[-1] - q[-50]).max() < 1e-9 and q[-1][0] < out[-1][0] - 0.2  # at rest, short of the plan
    assert core.counters["policy_unresponsive"] == 1
    assert core.status(4.0)[1]["hold_reason"].startswith("policy unresponsive: no heartbeat for 4.0 s")
    with pytest.raises(ChunkRejected, match="policy unresponsive"):
        core.on_chunk(ActionChunk(4.0, 0.1, names, out), 4.0)
    assert core.on_policy_heartbeat(104.5) == pytest.approx(4.5)  # back: the silence it ends
    assert core.tick(4.0, elapsed_s=0.01, steady_s=104.5).state == "holding"  # the old plan stays dropped
    core.on_chunk(ActionChunk(4.0, 0.1, names, out + (q[-1] - HOME)), 4.0)
    assert core.tick(4.01, elapsed_s=0.01, steady_s=104.51).state == "tracking"


def test_an_inactive_core_does_not_hold_for_the_policy_until_it_commands():
    """Not commanding (a policy loading its model while the executor waits, inactive): no hold, nothing logged;
    activated with the policy still silent, it holds at its first tick."""
    from vla_ros.core.executor import ExecutorCore, ExecutorSettings

    core = ExecutorCore(ROBOT.limits, ExecutorSettings(policy_heartbeat_timeout_s=1.0))
    core.on_joint_state(0.0, HOME)
    core.on_policy_heartbeat(0.0)
    assert core.tick(5.0, elapsed_s=0.01).state == "inactive" and not core.policy_unresponsive
    core.activate()
    core.on_joint_state(5.0, HOME)
    assert core.tick(5.01, elapsed_s=0.01).state == "policy_unresponsive"
