"""Action spaces through the real nodes over DDS: EE checkpoints through IK, bad model output, bad
configuration at configure, and the executor's Cartesian outputs (pose / twist)."""

import numpy as np
from conftest import log_text, wait_until
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.config import load_robot_config
from vla_ros.core.cartesian import CartesianCommands
from vla_ros.core.kinematics import UrdfKinematics
from vla_ros.nodes.conversions import s_to_duration
from vla_ros.paths import resolve_package_path

SIM = load_robot_config("sim")
Q = np.array([0.1, 0.15, 1.6, 1.2, 0.1, 0.05, 0.03])  # tool over the table


def diagnostics(peer, name: str) -> dict[str, str]:
    for array in reversed(peer.diagnostics):
        for status in array.status:
            if status.name.endswith(name):
                return {kv.key: kv.value for kv in status.values}
    return {}


def wait_policy_active(peer) -> bool:
    """The policy configured (its diagnostics timer runs; configure blocks its services meanwhile), then active."""
    return wait_until(lambda: diagnostics(peer, ": policy"), 90, interval_s=0.2) and peer.wait_active("vla_policy")


def test_ee_checkpoint_publishes_joint_chunks_through_ik(nodes, tiny_ee_checkpoint):
    bringup, peer, _ = nodes(model_path=tiny_ee_checkpoint)
    peer.q = Q.copy()
    peer.start_robot()
    assert wait_policy_active(peer)
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 30)
    msg = peer.chunks[-1]
    assert list(msg.joint_names) == list(SIM.joint_names) and len(msg.points) == 4
    positions = np.array([p.positions for p in msg.points])
    assert np.all(np.abs(positions[:, :6] - Q[:6]) < 0.1)  # mm-sized EE steps from the measured pose
    assert wait_until(lambda: diagnostics(peer, ": policy").get("chunks_rejected") == "0", 5)


def test_non_finite_model_output_is_rejected_with_the_reason_and_never_published(
    nodes, tmp_path, tiny_nan_ee_checkpoint
):
    bringup, peer, _ = nodes(model_path=tiny_nan_ee_checkpoint)
    peer.q = Q.copy()
    peer.start_robot()
    assert wait_policy_active(peer)
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: int(diagnostics(peer, ": policy").get("chunks_rejected", "0")) >= 2, 30)
    assert not peer.chunks
    assert "non-finite" in diagnostics(peer, ": policy")["last_truncation"]
    assert peer.lifecycle_state("vla_policy") == "active" and not bringup.dead()
    assert "chunk not published: no point could be converted" in log_text(tmp_path, "vla_policy")


def test_unknown_preset_and_missing_link_fail_configure_with_the_reason(
    nodes, tmp_path, tiny_checkpoint, tiny_ee_checkpoint
):
    bringup, peer, _ = nodes(policy_overrides={"action_space": "{preset: bridge_eee}"}, autostart=False)
    assert not peer.change_state("vla_policy", "configure")
    assert peer.lifecycle_state("vla_policy") == "unconfigured"
    assert "preset: unknown action space 'bridge_eee'" in log_text(tmp_path, "vla_policy")
    assert peer.set_param("vla_policy", "action_space", "").successful
    assert peer.set_param("vla_policy", "model_path", str(tiny_ee_checkpoint)).successful
    assert peer.set_param("vla_policy", "end_effector_link", "flange").successful
    assert not peer.change_state("vla_policy", "configure")
    assert "has no link 'flange'" in log_text(tmp_path, "vla_policy")
    assert peer.set_param("vla_policy", "end_effector_link", "tcp").successful
    assert peer.change_state("vla_policy", "configure"), log_text(tmp_path, "vla_policy")


def _cartesian_run(nodes, kind: str, msg_type):
    bringup, peer, specs = nodes(
        executor_overrides={"output": kind, "cartesian_link": "tcp", "cartesian_frame": "base"}, commands_type=msg_type
    )
    peer.q = Q.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.command_msgs) > 5, 30), f"no {kind} commands"
    return bringup, peer


def test_pose_output_is_the_tool_pose_of_the_joint_command(nodes):
    from geometry_msgs.msg import PoseStamped

    bringup, peer = _cartesian_run(nodes, "pose", PoseStamped)
    msg = peer.command_msgs[-1]
    assert msg.header.frame_id == "base"
    expected = CartesianCommands(UrdfKinematics(resolve_package_path(SIM.urdf), SIM.joint_names), "tcp", "base").pose(Q)
    p, o = msg.pose.position, msg.pose.orientation
    np.testing.assert_allclose([p.x, p.y, p.z], expected[0], atol=1e-9)  # holding: the measured pose
    np.testing.assert_allclose(np.abs(np.dot([o.x, o.y, o.z, o.w], expected[1])), 1.0, atol=1e-9)


def test_twist_output_follows_a_chunk_and_the_workspace_box_still_applies(nodes):
    from geometry_msgs.msg import TwistStamped

    bringup, peer = _cartesian_run(nodes, "twist", TwistStamped)
    assert all(np.allclose([m.twist.linear.x, m.twist.linear.z], 0.0) for m in peer.command_msgs[-3:])  # at rest
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    # a chunk that lowers the tool into the table: the executor stops at the workspace floor, so the
    # commanded twist takes the tool down and then back to zero; it never passes the floor
    target = Q.copy()
    target[1] += 1.2  # shoulder down
    msg = JointTrajectory(joint_names=list(SIM.joint_names))
    msg.header.stamp = peer.now_msg()
    msg.points = [
        JointTrajectoryPoint(
            positions=list(map(float, Q + (target - Q) * (i + 1) / 10)), time_from_start=s_to_duration(0.2 * (i + 1))
        )
        for i in range(10)
    ]
    start = len(peer.command_msgs)
    pub.publish(msg)
    assert wait_until(lambda: len(peer.command_msgs) > start + 300, 10)
    twists = np.array([[m.twist.linear.x, m.twist.linear.y, m.twist.linear.z] for m in peer.command_msgs[start:]])
    assert twists[:, 2].min() < -0.01  # moved down
    z0 = CartesianCommands(UrdfKinematics(resolve_package_path(SIM.urdf), SIM.joint_names), "tcp", "base").pose(Q)[0][2]
    z_path = z0 + np.cumsum(twists[:, 2]) * 0.01  # integrated commanded twist (100 Hz)
    assert z_path.min() >= SIM.workspace.min[2] - 0.01, z_path.min()
    assert np.allclose(twists[-20:], 0.0, atol=1e-6)  # stopped at the boundary
    assert wait_until(lambda: int(diagnostics(peer, ": executor").get("limit_workspace", "0")) > 0, 3)


def test_franka_ik_runs_an_ee_checkpoint_through_ik_on_the_panda_urdf(nodes, tmp_path, tiny_ee_pi0_franka):
    """franka_ik (Panda URDF from example-robot-data) with a π₀ checkpoint that predicts LIBERO EE deltas."""
    franka = load_robot_config("franka_ik")
    bringup, peer, specs = nodes(
        robot="franka_ik",
        backend="pi0",
        model_path=tiny_ee_pi0_franka,
        policy_overrides={"camera_topics": ["camera/image_raw", "wrist_camera/image_raw"]},
    )
    peer.q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])
    peer.start_robot()
    assert wait_policy_active(peer)
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 60), diagnostics(peer, ": policy")
    for msg in peer.chunks:
        assert list(msg.joint_names) == list(franka.joint_names)
        positions = np.array([p.positions for p in msg.points])
        assert np.all(positions >= franka.limits.min_position - 1e-9) and np.all(
            positions <= franka.limits.max_position + 1e-9
        )
        steps = np.abs(np.diff(np.vstack([peer.q, positions]), axis=0))[:, :7]
        assert np.all(steps <= franka.limits.max_velocity[:7] * 0.1 + 1e-6)  # IK's velocity budget per 0.1 s point
    assert "action space 'libero_ee_delta'" in log_text(tmp_path, "vla_policy")
