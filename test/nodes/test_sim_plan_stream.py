"""The sim robot with `controller: joint_trajectory` follows JointTrajectory messages over DDS the way
ros2_control's JointTrajectoryController does (core/jtc.py's model at every physics step): a plan with
positions, velocities and accelerations is interpolated (quintic) at its stamped times, a new plan
replaces the running one, a plan that ends in the past is rejected and the arm holds. What the
controller commanded comes back on the sim's `~/commanded`, stamped with each update's time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import log_text, wait_until

from vla_ros import cli
from vla_ros.bringup import Bringup
from vla_ros.core.jtc import NS, JtcModel, TimedTrajectory
from vla_ros.demo import DEMO_OUTPUTS, SIM_CONTROLLER_RATE_HZ
from vla_ros.launch_description import NodeSpec, node_specs
from vla_ros.nodes.conversions import timed_trajectory_message
from vla_ros.sim.tabletop import JOINT_NAMES, TabletopSim

MOVE = np.array([0.3, -0.2, 0.25, 0.0, 0.0, 0.0, 0.0])  # rad (gripper m), of the first plan
EXACT_RAD = 1e-9  # the node's command vs. the same model offline at the same update time: rounding only


class Robot:
    """The test's node: joint states in (time, positions), JointTrajectory out on `commands`."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        rclpy.init(args=[])
        self.node = rclpy.create_node("test_sim_plan_stream")
        self.states: list[tuple[int, np.ndarray]] = []
        self.commanded: list[tuple[int, np.ndarray]] = []  # the sim controller's (update time ns, positions)
        self.controller: dict[str, str] = {}  # the sim controller's last /diagnostics values
        self.lock = threading.Lock()
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.node.create_subscription(JointState, "joint_states", lambda m: self._on_state(m, self.states), 100)
        self.node.create_subscription(
            JointState, "/vla_sim_robot/commanded", lambda m: self._on_state(m, self.commanded), 100
        )
        self.pub = self.node.create_publisher(JointTrajectory, "commands", 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_state(self, msg, into: list) -> None:
        q = dict(zip(msg.name, msg.position))
        with self.lock:
            into.append((msg.header.stamp.sec * NS + msg.header.stamp.nanosec, np.array([q[n] for n in JOINT_NAMES])))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == "vla_sim_robot: controller":
                self.controller = {kv.key: kv.value for kv in status.values}

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def latest(self) -> np.ndarray:
        with self.lock:
            return self.states[-1][1].copy()

    def between(self, samples: list, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (S,) and positions (S, 7) of `samples` (states or commanded) stamped in [start_ns, end_ns]."""
        with self.lock:
            chosen = [(t, q) for t, q in samples if start_ns <= t <= end_ns]
        return np.array([t for t, _ in chosen], np.int64), np.array([q for _, q in chosen])

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def plan(
    stamp_ns: int, start: np.ndarray, end: np.ndarray, duration_s: float, reverse: bool = False
) -> TimedTrajectory:
    """A rest-to-rest quintic as three waypoints (start, middle with its velocity and acceleration, end), joints
    in reverse order when `reverse` (JTC sorts them to its own)."""
    s = np.array([0.0, 0.5, 1.0])  # the minimum-jerk profile at 0, T/2, T
    shape = 10 * s**3 - 15 * s**4 + 6 * s**5
    speed = (30 * s**2 - 60 * s**3 + 30 * s**4) / duration_s
    accel = (60 * s - 180 * s**2 + 120 * s**3) / duration_s**2
    delta = end - start
    positions = start + shape[:, None] * delta
    velocities, accelerations = speed[:, None] * delta, accel[:, None] * delta
    offsets = np.array([0, duration_s / 2, duration_s]) * NS
    order = slice(None, None, -1) if reverse else slice(None)
    names = JOINT_NAMES[order]
    return TimedTrajectory(
        stamp_ns, names, offsets.astype(np.int64), positions[:, order], velocities[:, order], accelerations[:, order]
    )


def replay(messages: list[tuple[int, TimedTrajectory]], hold: np.ndarray, times_ns, positions_only=False) -> np.ndarray:
    """The JTC model's commanded positions (S, 7) at update times times_ns (ascending), holding `hold` until it
    receives `messages` (receive time ns, trajectory); `positions_only` drops their derivatives."""
    model = JtcModel(JOINT_NAMES, hold, update_rate_hz=SIM_CONTROLLER_RATE_HZ)
    pending = sorted(messages, key=lambda m: m[0])
    out = []
    for t in times_ns:
        while pending and pending[0][0] <= t:
            msg = pending.pop(0)[1]
            if positions_only:
                msg = TimedTrajectory(msg.stamp_ns, msg.joint_names, msg.offsets_ns, msg.positions)
            assert model.receive(msg, int(t)), model.rejected
        out.append(model.update(int(t))[0])
    return np.array(out)


@pytest.fixture
def sim(ros_env, tmp_path):
    spec = NodeSpec("sim_robot", "vla_ros.nodes.sim_robot_node", "vla_sim_robot", {"controller": "joint_trajectory"})
    with Bringup([spec], log_dir=tmp_path / "logs", env=ros_env) as bringup:
        robot = Robot()
        try:
            assert wait_until(lambda: len(robot.states) > 10 and robot.pub.get_subscription_count() > 0, 30.0), (
                f"no joint states or no subscriber on commands; dead: {bringup.dead()}"
            )
            time.sleep(0.3)  # the arm settles where the episode put it
            yield robot, tmp_path
        finally:
            robot.close()


def test_the_sim_runs_plans_like_the_joint_trajectory_controller(sim):
    robot, logs = sim
    start = robot.latest()
    t0 = robot.now_ns() + int(0.2 * NS)
    first = plan(t0, start, start + MOVE, 1.2, reverse=True)
    sent = [(robot.now_ns(), first)]
    robot.pub.publish(timed_trajectory_message(first))
    time.sleep(0.7)
    # a replacement, sent before the join as the executor sends it: the running plan's waypoints from the last one
    # due (its start) up to the join (its middle), unchanged, then back to the start
    mid_v, mid_a = first.velocities[1, ::-1], first.accelerations[1, ::-1]
    second = TimedTrajectory(
        t0,
        JOINT_NAMES,
        np.array([0, int(0.6 * NS), int(1.5 * NS)], np.int64),
        np.stack([start, start + MOVE / 2, start]),
        np.stack([np.zeros(7), mid_v, np.zeros(7)]),
        np.stack([np.zeros(7), mid_a, np.zeros(7)]),
    )
    sent.append((robot.now_ns(), second))
    robot.pub.publish(timed_trajectory_message(second))
    end_ns = second.end_ns
    assert wait_until(lambda: robot.now_ns() > end_ns + int(0.5 * NS), 5.0)
    window = (t0, end_ns + int(0.2 * NS))  # the first plan's start is in the future: the arm held until then
    times, commanded = robot.between(robot.commanded, *window)
    assert len(times) > 100, f"{len(times)} commands on ~/commanded in {(window[1] - window[0]) / NS:.1f} s"
    error = np.abs(commanded - replay(sent, start, times)).max()
    assert error < EXACT_RAD, f"the sim's commands vs. the JTC model's at the same update times: {error} rad"
    # the same plans without velocities and accelerations (JTC's linear segments) are commanded otherwise
    assert np.abs(commanded - replay(sent, start, times, positions_only=True)).max() > 1e-3
    # and the arm followed: it went most of the way towards the plans' turning point and came back
    _, measured = robot.between(robot.states, *window)
    assert (np.abs(measured - start).max(axis=0)[1:3] > 0.5 * np.abs(MOVE[1:3])).all()
    assert wait_until(lambda: np.abs(robot.latest()[1:4] - start[1:4]).max() < 0.01, 3.0), robot.latest() - start
    # no jump anywhere: the command moved no faster between two updates than the plans do (0.1 ms grid; the
    # margin: the hold before the first plan is the reset pose, the plan's start the settled arm)
    fine = np.arange(t0 - int(0.1 * NS), end_ns + int(0.1 * NS), 100_000)
    plan_speed = np.abs(np.diff(replay(sent, start, fine), axis=0)).max() / 1e-4
    assert wait_until(lambda: "command_speed_max_rad_s" in robot.controller, 3.0), robot.controller
    assert 0.5 * plan_speed < float(robot.controller["command_speed_max_rad_s"]) <= 1.05 * plan_speed + 0.05
    assert "rejected" not in log_text(logs, "vla_sim_robot")


def test_a_plan_that_ends_in_the_past_is_rejected_and_the_arm_holds(sim):
    robot, logs = sim
    start = robot.latest()
    stale = plan(robot.now_ns() - int(2.0 * NS), start, start + MOVE, 1.0)
    robot.pub.publish(timed_trajectory_message(stale))
    assert wait_until(lambda: "rejected" in log_text(logs, "vla_sim_robot"), 5.0)
    assert "non-zero start time that ends in the past" in log_text(logs, "vla_sim_robot")
    assert wait_until(lambda: robot.controller.get("trajectories_rejected") == "1", 3.0), robot.controller
    assert robot.controller["trajectories_received"] == "1"
    assert float(robot.controller["command_speed_max_rad_s"]) == 0.0  # its command never changed
    assert robot.controller["last_rejection"] == "Received trajectory with non-zero start time that ends in the past"
    time.sleep(0.5)
    np.testing.assert_allclose(robot.latest(), start, atol=0.01)
    _, commanded = robot.between(robot.commanded, 0, robot.now_ns())
    np.testing.assert_array_equal(commanded, np.repeat(commanded[:1], len(commanded), 0))  # held throughout


def test_the_demo_runs_the_sims_controller_at_its_physics_rate(capsys):
    sim = TabletopSim(image_size=(8, 8))
    try:
        assert SIM_CONTROLLER_RATE_HZ == pytest.approx(1.0 / sim.model.opt.timestep)
    finally:
        sim.close()
    controllers = {}
    for output in DEMO_OUTPUTS:  # the sim follows what the executor sends
        specs = {
            s.name: s for s in node_specs("sim", use_sim=True, overrides={"vla_chunk_executor": {"output": output}})
        }
        controllers[output] = specs["vla_sim_robot"].parameters["controller"]
    assert controllers == {
        "joint_trajectory_plan": "joint_trajectory",
        "joint_trajectory": "joint_trajectory",
        "position_array": "forward_position",
    }
    with pytest.raises(SystemExit):
        cli.main(["demo", "--output", "joint_velocity"])  # the CLI offers exactly the demo's outputs
    assert f"choose from {', '.join(repr(o) for o in DEMO_OUTPUTS)}" in capsys.readouterr().err
