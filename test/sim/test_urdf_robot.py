"""The MuJoCo sim of a robot config built from its URDF: kinematics, position tracking, cameras, and the
sim_robot node running it over DDS."""

from __future__ import annotations

import numpy as np
import pytest
from harness import wait_until

from vla_ros.config import load_robot_config
from vla_ros.core.kinematics import UrdfKinematics
from vla_ros.paths import resolve_package_path
from vla_ros.sim.urdf_robot import TIMESTEP_S, UrdfRobotSim

ROBOTS = ("so101", "ur5", "franka_ik")
IMAGE_SIZE = (48, 64)  # (height, width): not square, so a swapped size shows


@pytest.fixture(scope="module", params=ROBOTS)
def sim(request):
    s = UrdfRobotSim(request.param, image_size=IMAGE_SIZE)
    yield s
    s.close()


def _target(sim: UrdfRobotSim) -> np.ndarray:
    """A pose away from home: every joint moved by 0.3 (rad or m-scaled for prismatic joints), inside its limits."""
    lower, upper = sim._lower, sim._upper
    step = np.minimum(0.3, 0.25 * (upper - lower))
    target = sim.home + step
    return np.where(target < upper, target, sim.home - step)


def test_builds_with_the_configs_joints_and_starts_inside_its_limits_and_workspace(sim):
    cfg = sim.config
    assert sim.joint_names == cfg.joint_names and sim.camera_names == ("front", "wrist")
    sim.reset(0)
    q = sim.joint_positions()
    assert q.shape == (len(cfg.joint_names),) and np.all(sim.joint_velocities() == 0.0)
    assert np.all(q >= cfg.limits.min_position) and np.all(q <= cfg.limits.max_position)
    ee = sim.link_position(cfg.workspace.link)
    assert np.all(ee > np.array(cfg.workspace.min)) and np.all(ee < np.array(cfg.workspace.max))
    assert sim.outcome == "none" and sim.reset(1).instruction == sim.task.instruction


def test_tracks_a_position_command_at_the_velocity_limit_and_matches_the_urdf_kinematics(sim):
    sim.reset(0)
    start, target = sim.joint_positions(), _target(sim)
    sim.set_command(target)
    sim.advance(0.1)
    moved = np.abs(sim.joint_positions() - start)
    assert np.all(moved <= sim.config.limits.max_velocity * 0.1 + 1e-9)  # capped by max_velocity
    assert np.all(moved > 0.0)
    sim.advance(2.0)
    np.testing.assert_allclose(sim.joint_positions(), target, atol=1e-3)
    assert np.all(np.abs(sim.joint_velocities()) < 0.05)
    assert sim.time_s == pytest.approx(2.1, abs=TIMESTEP_S)
    # the end effector is where the URDF's own kinematics (pinocchio, used by IK and the workspace) puts it
    cfg = sim.config
    kinematics = UrdfKinematics(resolve_package_path(cfg.urdf), cfg.joint_names)
    expected = kinematics.link_position(kinematics.frame_id(sim.ee_link), sim.joint_positions())
    np.testing.assert_allclose(sim.ee_position(), expected, atol=1e-6)
    # commands are clipped to the position limits and validated
    sim.set_command(np.full(len(cfg.joint_names), 100.0))
    sim.advance(0.05)
    assert np.all(sim.joint_positions() <= cfg.limits.max_position + 1e-12)
    with pytest.raises(ValueError, match=f"{len(cfg.joint_names)} finite numbers"):
        sim.set_command(np.full(len(cfg.joint_names), np.nan))
    with pytest.raises(ValueError, match="finite numbers"):
        sim.set_command(np.zeros(2))


def test_renders_both_cameras_at_the_requested_size_and_the_wrist_camera_moves_with_the_arm(sim):
    sim.reset(0)
    before = {cam: sim.render(cam) for cam in sim.camera_names}
    for img in before.values():
        assert img.shape == (*IMAGE_SIZE, 3) and img.dtype == np.uint8 and img.std() > 5
    sim.set_command(_target(sim))
    sim.advance(2.0)
    after = sim.render("wrist")
    assert np.abs(after.astype(int) - before["wrist"].astype(int)).mean() > 2
    with pytest.raises(ValueError, match="unknown camera"):
        sim.render("nope")


def test_mimic_joints_follow_and_start_pose_and_capsule_fallback():
    # franka: panda_finger_joint2 mimics panda_finger_joint1 (MuJoCo compiles the URDF mimic to an equality)
    cfg = load_robot_config("franka_ik")
    home = np.array([0.1, -0.5, 0.0, -2.0, 0.0, 1.6, 0.7, 0.02])
    sim = UrdfRobotSim(cfg, image_size=(32, 32), initial_positions=home, meshes=False)
    np.testing.assert_allclose(sim.joint_positions(), home)
    finger2 = sim.model.joint("panda_finger_joint2").qposadr[0]
    assert sim.data.qpos[finger2] == pytest.approx(0.02)
    assert sim.model.nmesh == 0 and sim.render("front").std() > 5  # drawn with capsules only
    with pytest.raises(ValueError, match="initial_positions must be 8 finite numbers"):
        UrdfRobotSim(cfg, initial_positions=[0.0, 1.0])
    sim.close()


# --- the sim_robot node over DDS ----------------------------------------------------------


def test_sim_node_runs_the_so101_from_its_robot_config(ros_env, ros_node, tmp_path):
    """Started as the bring-up starts it (use_sim for a non-sim robot config): joint_states with the
    so101 joint names on the config's topic, both camera topics, and it follows `commands`."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, String

    from vla_ros.bringup import Bringup
    from vla_ros.launch_description import node_specs

    cfg = load_robot_config("so101")
    overrides = {"vla_sim_robot": {"image_width": 40, "image_height": 32, "camera_rate_hz": 5.0}}
    specs = [s for s in node_specs("so101", use_sim=True, overrides=overrides) if s.name == "vla_sim_robot"]
    assert specs[0].parameters["robot_config"] == cfg.source
    bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env)
    states: list = []
    images: dict[str, list] = {c.name: [] for c in cfg.cameras}
    outcomes: list = []
    ros_node.create_subscription(JointState, cfg.topics["joint_states"], states.append, 10)
    for cam in cfg.cameras:
        ros_node.create_subscription(Image, cam.topic, images[cam.name].append, qos_profile_sensor_data)
    from rclpy.qos import DurabilityPolicy, QoSProfile

    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    ros_node.create_subscription(String, "/vla_sim_robot/outcome", outcomes.append, latched)
    commands = ros_node.create_publisher(Float64MultiArray, cfg.topics["commands"], 10)
    bringup.start()
    try:
        assert wait_until(lambda: states and all(images.values()), 30.0), (
            f"no joint_states/images within 30 s (states {len(states)}, images "
            f"{ {k: len(v) for k, v in images.items()} }, node exited: {bringup.dead()})"
        )
        assert tuple(states[-1].name) == cfg.joint_names
        for frames in images.values():
            assert (frames[-1].height, frames[-1].width, frames[-1].encoding) == (32, 40, "rgb8")
        assert wait_until(lambda: outcomes, 5.0) and outcomes[-1].data == "none"
        start = np.array(states[-1].position)
        target = start + np.array([0.3, -0.2, 0.2, -0.2, 0.3, 0.2])

        def reached() -> bool:
            commands.publish(Float64MultiArray(data=target.tolist()))
            return bool(np.abs(np.array(states[-1].position) - target).max() < 1e-3)

        assert wait_until(reached, 10.0), f"joint_states {list(states[-1].position)} did not reach {list(target)}"
    finally:
        bringup.stop()
