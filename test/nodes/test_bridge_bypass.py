"""bypass_executor: the policy's chunks straight to ros2_control's JointTrajectoryController with
`positions_upsampling` (ros2_controllers master; the former InferenceBridgeController), no executor.

The controller's acceptance is modelled from its source (core/jtc.py: `upsample_positions`, `validate`): the
chunks the policy publishes over DDS are accepted as they arrive (joint names, positions only, strictly
increasing time_from_start, an end in the future), and the sim's controller model runs them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import log_text, wait_until
from scipy.interpolate import CubicSpline

from vla_ros.bringup import Bringup
from vla_ros.core.jtc import NS, JtcModel, TimedTrajectory, upsample_positions, validate
from vla_ros.launch_description import node_specs, specs_from_launch_arguments
from vla_ros.nodes.conversions import trajectory_message_to_timed
from vla_ros.sim.tabletop import JOINT_NAMES

JTC_TOPIC = "/joint_trajectory_controller/joint_trajectory"


def test_the_bypass_leaves_out_the_executor_and_sends_chunks_to_the_controller():
    specs = {s.name: s for s in specs_from_launch_arguments({"robot": "franka", "bypass_executor": "true"})}
    assert sorted(specs) == ["vla_lifecycle_manager", "vla_policy"]
    assert specs["vla_lifecycle_manager"].parameters["node_names"] == ["vla_policy"]
    assert ("action_chunk", JTC_TOPIC) in specs["vla_policy"].remappings
    sim = {s.name: s for s in node_specs("sim", use_sim=True, bypass_executor=True)}
    assert ("action_chunk", "commands") in sim["vla_policy"].remappings
    assert sim["vla_sim_robot"].parameters["controller"] == "joint_trajectory"  # the sim's JTC model takes them
    assert "vla_chunk_executor" in {s.name for s in node_specs("franka")}  # not bypassed by default
    franka_sim = {s.name: s for s in node_specs("franka", use_sim=True)}  # plans to the URDF sim's JTC model
    assert franka_sim["vla_sim_robot"].parameters["controller"] == "joint_trajectory"
    assert ("commands", JTC_TOPIC) in franka_sim["vla_sim_robot"].remappings
    with pytest.raises(ValueError, match=r"bypass_executor:=true: robot 'so101' .* output 'position_array'"):
        specs_from_launch_arguments({"robot": "so101", "bypass_executor": "true"})


def test_positions_upsampling_is_the_clamped_cubic_spline():
    """fill_cubic_spline_velocities: the knot velocities of the C2 cubic spline with zero end velocities;
    synthesize_timing: points at (i + 1) / policy_frequency when none has a time; derivatives pass through."""
    rng = np.random.default_rng(3)
    offsets = np.cumsum(rng.uniform(0.05, 0.2, 9))
    positions = rng.normal(size=(9, 3))
    chunk = TimedTrajectory(7 * NS, ("a", "b", "c"), np.round(offsets * NS).astype(np.int64), positions)
    out = upsample_positions(chunk, policy_frequency_hz=10.0)
    spline = CubicSpline(out.offsets_ns / NS, positions, bc_type="clamped")
    np.testing.assert_allclose(out.velocities, spline(out.offsets_ns / NS, 1), atol=1e-9)
    assert out.accelerations is None and np.array_equal(out.offsets_ns, chunk.offsets_ns)  # its own timing kept
    untimed = upsample_positions(TimedTrajectory(0, ("a", "b", "c"), np.zeros(9, np.int64), positions), 10.0)
    np.testing.assert_array_equal(untimed.offsets_ns, np.arange(1, 10) * NS // 10)
    with_velocities = TimedTrajectory(0, ("a",), np.array([1, 2]), np.zeros((2, 1)), np.ones((2, 1)))
    assert upsample_positions(with_velocities, 10.0) is with_velocities
    no_rate = upsample_positions(TimedTrajectory(0, ("a",), np.zeros(2, np.int64), np.zeros((2, 1))))
    assert no_rate.velocities is None
    assert validate(no_rate, ("a",), 0) == "Time between points 0 and 1 is not strictly increasing"


class ChunkListener:
    """The test's node: JointTrajectory messages on `commands` with their arrival time (ns), and the sim
    controller's `~/commanded` positions."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        rclpy.init(args=[])
        self.node = rclpy.create_node("test_bridge_bypass")
        self.lock = threading.Lock()
        self.chunks: list[tuple[int, object]] = []
        self.commanded: list[np.ndarray] = []
        self.node.create_subscription(JointTrajectory, "commands", self._on_chunk, 50)
        self.node.create_subscription(
            JointState, "/vla_sim_robot/commanded", lambda m: self.commanded.append(np.array(m.position)), 50
        )
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_chunk(self, msg) -> None:
        with self.lock:
            self.chunks.append((self.node.get_clock().now().nanoseconds, msg))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def test_the_policys_chunks_are_what_the_controller_accepts(ros_env, tiny_checkpoint, tmp_path):
    specs = node_specs(
        "sim",
        model_path=str(tiny_checkpoint),
        use_sim=True,
        bypass_executor=True,
        overrides={"vla_policy": {"instruction": "reach the red cube", "inference_period_s": 0.2}},
    )
    listener = None
    with Bringup(specs, log_dir=tmp_path / "logs", env=ros_env) as bringup:
        try:
            listener = ChunkListener()
            assert wait_until(lambda: len(listener.chunks) >= 5, 90.0), (
                f"{len(listener.chunks)} chunks on commands; dead: {bringup.dead()}"
            )
            assert wait_until(lambda: len(listener.commanded) > 10, 5.0)
            with listener.lock:
                chunks = list(listener.chunks)
            commanded = np.array(listener.commanded)
            nodes = listener.node.get_node_names()
            assert bringup.dead() == {}
        finally:
            if listener is not None:
                listener.close()
    assert "vla_chunk_executor" not in nodes and "vla_policy" in nodes
    bridge = JtcModel(JOINT_NAMES, np.zeros(7), positions_upsampling=True, policy_frequency_hz=10.0)
    plain = JtcModel(JOINT_NAMES, np.zeros(7))
    for arrived_ns, msg in chunks:
        chunk = trajectory_message_to_timed(msg)
        assert chunk.joint_names == JOINT_NAMES  # every controller joint, none else
        assert chunk.velocities is None and chunk.accelerations is None  # positions only: the bridge solves them
        assert chunk.offsets_ns[0] > 0 and (np.diff(chunk.offsets_ns) > 0).all()  # its own timing, increasing
        assert 0 < chunk.stamp_ns < arrived_ns < chunk.end_ns  # the observation's time; it ends in the future
        assert bridge.receive(chunk, arrived_ns) and plain.receive(chunk, arrived_ns), bridge.rejected + plain.rejected
        upsampled = upsample_positions(chunk, 10.0)
        assert upsampled.velocities is not None and not upsampled.velocities[-1].any()  # rests at its end
    assert "rejected" not in log_text(tmp_path, "vla_sim_robot")  # the sim's controller took every chunk
    assert np.abs(commanded - commanded[0]).max() > 1e-3  # and moved the arm
