import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_ros.core.ik import DifferentialIk, IkSettings
from vla_ros.core.kinematics import KinematicsError, UrdfKinematics
from vla_ros.core.robot_descriptions import franka_urdf_path
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import ARM_JOINTS, JOINT_NAMES

PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


def sim_ik() -> DifferentialIk:
    kinematics = UrdfKinematics(resolve_package_path("config/urdf/sim_arm.urdf"), JOINT_NAMES)
    return DifferentialIk(kinematics, "tcp", ARM_JOINTS)


def panda_ik() -> DifferentialIk:
    return DifferentialIk(UrdfKinematics(franka_urdf_path(), PANDA_JOINTS), "panda_hand_tcp", PANDA_JOINTS)


ROBOTS = {"sim": sim_ik, "panda": panda_ik}


def rotation_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(Rotation.from_matrix(a @ b.T).as_rotvec()))


def random_configurations(ik: DifferentialIk, rng, count: int) -> np.ndarray:
    """In-limit configurations, 0.2 rad away from the limits."""
    lower, upper = ik.min_position + 0.2, ik.max_position - 0.2
    return rng.uniform(lower, upper, size=(count, lower.size))


@pytest.mark.parametrize("robot", ROBOTS)
def test_fk_ik_round_trip_on_random_reachable_poses(robot):
    ik = ROBOTS[robot]()
    rng = np.random.default_rng(7)
    solved = 0
    for q_true in random_configurations(ik, rng, 40):
        position, rotation = ik.forward(q_true)
        start = np.clip(q_true + rng.uniform(-0.15, 0.15, q_true.size), ik.min_position, ik.max_position)
        result = ik.solve(position[None], rotation[None], start, dt_s=1.0)
        assert result.valid_count in (0, 1)
        if result.valid_count == 1:
            solved += 1
            reached_p, reached_r = ik.forward(result.positions[0])
            assert np.linalg.norm(reached_p - position) <= 1e-3
            assert rotation_error(reached_r, rotation) <= 0.01
            assert np.all(result.positions[0] >= ik.min_position) and np.all(result.positions[0] <= ik.max_position)
        else:
            assert "unreachable" in result.reason
    assert solved >= 38, f"{robot}: only {solved}/40 random reachable poses solved from a start 0.15 rad away"


@pytest.mark.parametrize("robot", ROBOTS)
def test_chunk_of_poses_is_tracked_continuously_within_the_velocity_limit(robot):
    ik = ROBOTS[robot]()
    rng = np.random.default_rng(3)
    q0 = (ik.min_position + ik.max_position) / 2
    dt_s = 0.1
    steps = rng.uniform(-1, 1, size=(50, q0.size)) * ik.max_velocity * dt_s * 0.3
    path = q0 + np.cumsum(steps, axis=0)
    poses = [ik.forward(q) for q in path]
    result = ik.solve(np.array([p for p, _ in poses]), np.array([r for _, r in poses]), q0, dt_s)
    assert result.valid_count == 50, result.reason
    assert result.position_error_m.max() <= 1e-3 and result.rotation_error_rad.max() <= 0.01
    jumps = np.abs(np.diff(np.vstack([q0, result.positions]), axis=0))
    assert np.all(jumps <= ik.max_velocity * dt_s + 1e-9)


@pytest.mark.parametrize("robot", ROBOTS)
def test_unreachable_point_truncates_the_chunk_without_a_jump(robot):
    ik = ROBOTS[robot]()
    q0 = (ik.min_position + ik.max_position) / 2
    p0, r0 = ik.forward(q0)
    positions = p0 + np.outer(np.arange(1, 11), [0.002, 0.0, 0.0])
    positions[6] = [3.0, 0.0, 0.5]  # far out of reach
    result = ik.solve(positions, np.repeat(r0[None], 10, axis=0), q0, dt_s=0.1)
    assert result.valid_count == 6
    assert "point 6: unreachable" in result.reason
    assert result.positions.shape == (6, q0.size)
    jumps = np.abs(np.diff(np.vstack([q0, result.positions]), axis=0))
    assert np.all(jumps <= ik.max_velocity * 0.1 + 1e-9)


def test_a_pose_farther_than_the_velocity_limit_allows_is_not_jumped_to():
    ik = sim_ik()
    q0 = (ik.min_position + ik.max_position) / 2
    q_far = q0 + 0.5  # reachable, but 0.5 rad per joint needs 0.25 s at 2 rad/s
    target = ik.forward(q_far)
    slow = ik.solve(target[0][None], target[1][None], q0, dt_s=0.05)
    assert slow.valid_count == 0 and "unreachable" in slow.reason
    fast = ik.solve(target[0][None], target[1][None], q0, dt_s=1.0)
    assert fast.valid_count == 1


def test_position_limits_hold_even_when_the_target_lies_beyond_them():
    ik = sim_ik()
    q = np.array([0.0, 0.6, 1.2, 0.8, 0.3, 0.2])  # bent: only the base joint turns the arm's azimuth
    q_beyond = q.copy()
    q_beyond[0] = ik.max_position[0] + 0.3  # the base turned past its limit
    target = ik.forward(q_beyond)
    start = q.copy()
    start[0] = ik.max_position[0] - 0.05
    result = ik.solve(target[0][None], target[1][None], start, dt_s=1.0)
    assert result.valid_count == 0
    assert "unreachable" in result.reason


def test_non_finite_target_truncates_with_reason():
    ik = sim_ik()
    q0 = (ik.min_position + ik.max_position) / 2
    p0, r0 = ik.forward(q0)
    positions = np.repeat(p0[None], 4, axis=0)
    positions[2, 1] = np.nan
    result = ik.solve(positions, np.repeat(r0[None], 4, axis=0), q0, dt_s=0.1)
    assert result.valid_count == 2 and result.reason == "point 2: target not finite"


def test_position_only_ignores_the_rotation():
    kinematics = UrdfKinematics(resolve_package_path("config/urdf/sim_arm.urdf"), JOINT_NAMES)
    ik = DifferentialIk(kinematics, "tcp", ARM_JOINTS, settings=IkSettings(orientation_weight=0.0))
    q0 = (ik.min_position + ik.max_position) / 2
    p0, r0 = ik.forward(q0)
    upside_down = Rotation.from_rotvec([np.pi, 0, 0]).as_matrix() @ r0
    result = ik.solve((p0 + [0.01, 0, 0])[None], upside_down[None], q0, dt_s=0.5)
    assert result.valid_count == 1
    assert np.linalg.norm(ik.forward(result.positions[0])[0] - (p0 + [0.01, 0, 0])) <= 1e-3


def test_missing_end_effector_link_is_a_clear_error():
    kinematics = UrdfKinematics(resolve_package_path("config/urdf/sim_arm.urdf"), JOINT_NAMES)
    with pytest.raises(KinematicsError, match="has no link 'flange'"):
        DifferentialIk(kinematics, "flange", ARM_JOINTS)


@pytest.mark.parametrize(
    "key, value", [("max_iterations", 0), ("position_tolerance_m", -1.0), ("orientation_weight", float("nan"))]
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"{key}: must be"):
        IkSettings(**{key: value})


def test_franka_urdf_comes_from_the_installed_package():
    path = franka_urdf_path()
    assert path.name == "panda.urdf" and "example-robot-data" in str(path)
    kinematics = UrdfKinematics(path, PANDA_JOINTS)
    assert kinematics.chain_joints(kinematics.frame_id("panda_hand_tcp")) == PANDA_JOINTS
