import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_ros.core.action_space import PRESETS, ActionSpaceError, action_space_from_dict
from vla_ros.core.action_space_converter import ActionSpaceConverter
from vla_ros.core.kinematics import KinematicsError, UrdfKinematics
from vla_ros.core.robot_descriptions import franka_urdf_path
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import HOME_Q, JOINT_NAMES

PANDA_JOINTS = (*(f"panda_joint{i}" for i in range(1, 8)), "panda_finger_joint1")
PANDA_HOME = np.array([0.0, -0.5, 0.0, -2.0, 0.0, 1.6, 0.8, 0.04])
SIM_KINEMATICS = UrdfKinematics(resolve_package_path("config/urdf/sim_arm.urdf"), JOINT_NAMES)
GRIPPER_LOW, GRIPPER_HIGH = 0.0, 0.04  # the sim gripper joint's limits (metres)


def sim(raw: dict, ee_link: str = "tcp", base_link: str = "base") -> ActionSpaceConverter:
    space = action_space_from_dict(raw)
    return ActionSpaceConverter(space, SIM_KINEMATICS, JOINT_NAMES, ee_link, base_link, gripper_joint="gripper")


def panda(raw: dict) -> ActionSpaceConverter:
    kinematics = UrdfKinematics(franka_urdf_path(), PANDA_JOINTS)
    space = action_space_from_dict(raw)
    return ActionSpaceConverter(
        space, kinematics, PANDA_JOINTS, "panda_hand_tcp", "panda_link0", gripper_joint=PANDA_JOINTS[-1]
    )


def rot_error(a, b) -> float:
    return float(np.linalg.norm(Rotation.from_matrix(a @ b.T).as_rotvec()))


# ---------------------------------------------------------------- declaration and presets
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_on_the_sim_arm(name):
    converter = sim({"preset": name})
    actions = np.zeros((4, converter.action_dim))
    targets = converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.1)
    assert targets.valid_count == 4 and targets.reason == ""
    assert converter.state_vector(HOME_Q).shape == (converter.state_dim,)


def test_preset_sizes_match_their_families():
    assert sim({"preset": "bridge_ee_delta"}).action_dim == 7  # xyz + rpy + gripper
    libero = sim({"preset": "libero_ee_delta"})
    assert (libero.action_dim, libero.state_dim) == (7, 8)  # state: pos + axis-angle + 2 fingers
    droid = panda({"preset": "droid_joint_velocity"})
    assert (droid.action_dim, droid.state_dim) == (8, 8)  # 7 velocities + gripper


def test_overrides_change_only_the_named_fields():
    space = action_space_from_dict(
        {"preset": "libero_ee_delta", "gripper": {"source_range": [-1, 1], "invert": True}, "ik": {"max_iterations": 5}}
    )
    gripper = space.groups[2]
    assert (gripper.source_range, gripper.invert, gripper.binarize_threshold) == ((-1.0, 1.0), True, 0.5)
    assert space.groups[0] == PRESETS["libero_ee_delta"].groups[0]
    assert space.ik.max_iterations == 5 and space.ik.position_tolerance_m == 1e-3


def test_groups_replace_the_preset_and_state_can_be_overridden():
    raw = {
        "preset": "bridge_ee_delta",
        "groups": [
            {"type": "ee_position", "mode": "absolute"},
            {"type": "ee_rotation", "mode": "absolute", "format": "quat_wxyz"},
        ],
        "state": {"groups": [{"type": "ee_rotation", "format": "rot6d"}]},
    }
    space = action_space_from_dict(raw)
    assert [g.type for g in space.groups] == ["ee_position", "ee_rotation"] and space.groups[1].format == "quat_wxyz"
    assert space.chain == "cumulative" and space.name == "bridge_ee_delta"
    converter = sim(raw)
    assert (converter.action_dim, converter.state_dim) == (7, 6)


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"preset": "openvla"},
            "action_space.preset: unknown action space 'openvla' (known: ['aloha_joints', 'bridge_ee_delta'",
        ),
        (
            {"preset": "bridge_ee_delta", "gripper": {"invert": "yes"}},
            "action_space.gripper.invert: must be true or false, got 'yes'",
        ),
        (
            {"preset": "bridge_ee_delta", "ee_rotation": {"format": "quat"}},
            "action_space.ee_rotation.format: must be one of",
        ),
        (
            {"preset": "bridge_ee_delta", "ee_rotation": {"fromat": "quat_xyzw"}},
            "action_space.ee_rotation.fromat: unknown field",
        ),
        ({"preset": "joint_delta", "gripper": {}}, "action_space.gripper: overrides need exactly one gripper group"),
        (
            {"preset": "bridge_ee_delta", "chain": "each"},
            "action_space.chain: must be one of ['cumulative', 'from_state'], got 'each'",
        ),
        ({"groups": [{"type": "cartesian"}]}, "action_space.groups[0].type: must be one of"),
        (
            {"groups": [{"type": "ee_position", "mode": "absolute", "frame": "tool"}]},
            "action_space.groups[0].frame: an absolute position",
        ),
        (
            {"groups": [{"type": "ee_rotation", "format": "rot6d", "scale": 0.5}]},
            "action_space.groups[0].scale: only euler_xyz and axis_angle",
        ),
        (
            {"groups": [{"type": "gripper", "source_range": [1, 1]}]},
            "action_space.groups[0].source_range: low and high must differ",
        ),
        (
            {"groups": [{"type": "gripper", "binarize_threshold": 1.5}]},
            "action_space.groups[0].binarize_threshold: must be in (0, 1)",
        ),
        (
            {"preset": "bridge_ee_delta", "ik": {"max_iterations": 0}},
            "action_space.ik.max_iterations: must be an integer >= 1, got 0",
        ),
        ({"preset": "bridge_ee_delta", "speed": 1}, "action_space.speed: unknown key"),
        ({"chain": "cumulative"}, "action_space: needs `preset`"),
    ],
)
def test_bad_declarations_name_the_key_and_value(raw, message):
    with pytest.raises(ActionSpaceError) as info:
        action_space_from_dict(raw)
    assert message in str(info.value)


def test_configuration_errors_against_the_robot():
    with pytest.raises(KinematicsError, match="has no link 'flange'"):
        sim({"preset": "bridge_ee_delta"}, ee_link="flange")
    with pytest.raises(ActionSpaceError, match="needs a URDF and an end-effector link"):
        ActionSpaceConverter(action_space_from_dict({"preset": "bridge_ee_delta"}), None, JOINT_NAMES)
    with pytest.raises(ActionSpaceError, match=r"groups\[2\].joint: 'hand' is not one of the joints"):
        sim({"preset": "bridge_ee_delta", "gripper": {"joint": "hand"}})
    with pytest.raises(ActionSpaceError, match="joint 'elbow' is driven by both"):
        sim({"groups": [{"type": "ee_position"}, {"type": "joint_position", "joints": ["elbow"]}]})
    with pytest.raises(KinematicsError, match="base link 'link2' is moved by joints"):
        sim({"preset": "bridge_ee_delta"}, base_link="link2")
    with pytest.raises(ValueError, match=r"actions must be \(H, 7\)"):
        sim({"preset": "bridge_ee_delta"}).to_joint_targets(np.zeros((3, 6)), HOME_Q, HOME_Q, 0.1)


def test_a_gripper_needs_a_joint_and_ignored_values_are_ignored():
    space = action_space_from_dict({"preset": "bridge_ee_delta"})
    with pytest.raises(ActionSpaceError, match=r"groups\[2\].joint: no gripper joint"):
        ActionSpaceConverter(space, SIM_KINEMATICS, JOINT_NAMES, "tcp")
    # a robot whose gripper is commanded elsewhere: the model's gripper value is declared unused
    converter = sim(
        {
            "preset": "bridge_ee_delta",
            "groups": [{"type": "ee_position"}, {"type": "ee_rotation"}, {"type": "ignore", "size": 2}],
        }
    )
    actions = np.zeros((3, 8))
    actions[:, 6:] = np.nan
    actions[:, 0] = 0.01
    targets = converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.2)
    assert converter.action_dim == 8 and targets.valid_count == 3, targets.reason
    assert np.all(targets.positions[:, 6] == HOME_Q[6])  # the gripper joint holds
    dropped = action_space_from_dict({"preset": "bridge_ee_delta", "gripper": "ignore"})
    assert [g.type for g in dropped.groups] == ["ee_position", "ee_rotation", "ignore"]
    assert ActionSpaceConverter(dropped, SIM_KINEMATICS, JOINT_NAMES, "tcp").action_dim == 7


def test_joint_spaces_need_no_urdf():
    converter = ActionSpaceConverter(action_space_from_dict({"preset": "joint_absolute"}), None, JOINT_NAMES)
    actions = np.tile(HOME_Q, (3, 1))
    assert np.array_equal(converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.1).positions, actions)
    assert np.array_equal(converter.state_vector(HOME_Q), HOME_Q)


# ---------------------------------------------------------------- chaining conventions
def pose(converter, q):
    return converter.ee_pose(q)


@pytest.mark.parametrize("chain", ["cumulative", "from_state"])
def test_base_frame_deltas_chain_as_declared(chain):
    converter = sim({"preset": "bridge_ee_delta", "chain": chain})
    state_q = HOME_Q
    start_q = HOME_Q + np.array([0.05, 0, 0, 0, 0, 0, 0])  # the plan is ahead of the measured state
    actions = np.zeros((3, 7))
    actions[:, 0] = 0.01  # +1 cm x per step
    actions[:, 5] = 0.1  # +0.1 rad yaw per step
    targets = converter.to_ee_poses(actions, state_q, start_q, 0.2)
    if chain == "cumulative":  # Bridge: each step relative to the previous target, the first to the plan
        p0, r0 = pose(converter, start_q)
        expected_p = [p0 + [0.01 * k, 0, 0] for k in (1, 2, 3)]
        expected_r = [Rotation.from_euler("z", 0.1 * k).as_matrix() @ r0 for k in (1, 2, 3)]
    else:  # every step relative to the observed state
        p0, r0 = pose(converter, state_q)
        expected_p = [p0 + [0.01, 0, 0]] * 3
        expected_r = [Rotation.from_euler("z", 0.1).as_matrix() @ r0] * 3
    assert np.allclose(targets.positions, expected_p, atol=1e-12)
    got_r = Rotation.from_quat(targets.quaternions_xyzw).as_matrix()
    assert max(rot_error(g, e) for g, e in zip(got_r, expected_r)) < 1e-9


def test_tool_frame_deltas_follow_the_tool_axes():
    converter = sim({"preset": "bridge_ee_delta", "ee_position": {"frame": "tool"}, "ee_rotation": {"frame": "tool"}})
    p0, r0 = pose(converter, HOME_Q)
    actions = np.zeros((2, 7))
    actions[:, 2] = 0.01  # 1 cm along the tool's z axis
    actions[:, 3] = 0.2  # roll about the tool's x axis
    targets = converter.to_ee_poses(actions, HOME_Q, HOME_Q, 0.2)
    roll = Rotation.from_euler("x", 0.2).as_matrix()
    r1 = r0 @ roll
    p1 = p0 + r0 @ [0, 0, 0.01]
    p2 = p1 + r1 @ [0, 0, 0.01]
    assert np.allclose(targets.positions, [p1, p2], atol=1e-12)
    got = Rotation.from_quat(targets.quaternions_xyzw).as_matrix()
    assert rot_error(got[1], r0 @ roll @ roll) < 1e-9
    # from the state: every step from the state's pose, along its axes
    converter = sim({"preset": "bridge_ee_delta", "chain": "from_state", "ee_position": {"frame": "tool"}})
    targets = converter.to_ee_poses(actions, HOME_Q, HOME_Q + 0.1, 0.2)
    assert np.allclose(targets.positions, [p1, p1], atol=1e-12)
    got = Rotation.from_quat(targets.quaternions_xyzw).as_matrix()
    assert max(rot_error(g, Rotation.from_euler("x", 0.2).as_matrix() @ r0) for g in got) < 1e-9


def test_libero_scales_model_units_to_metres_and_radians():
    converter = sim({"preset": "libero_ee_delta"})
    p0, r0 = pose(converter, HOME_Q)
    actions = np.array([[1.0, -0.5, 0.0, 0.0, 0.0, 0.4, 1.0]])  # +5 cm x, -2.5 cm y, 0.2 rad about z
    targets = converter.to_ee_poses(actions, HOME_Q, HOME_Q, 0.05)
    assert np.allclose(targets.positions[0], p0 + [0.05, -0.025, 0.0])
    assert (
        rot_error(
            Rotation.from_quat(targets.quaternions_xyzw[0]).as_matrix(),
            Rotation.from_rotvec([0, 0, 0.2]).as_matrix() @ r0,
        )
        < 1e-9
    )


def test_ik_joint_targets_reach_the_ee_targets():
    converter = sim({"preset": "bridge_ee_delta"})
    rng = np.random.default_rng(0)
    actions = np.hstack([rng.uniform(-0.01, 0.01, (8, 3)), rng.uniform(-0.03, 0.03, (8, 3)), np.ones((8, 1))])
    poses = converter.to_ee_poses(actions, HOME_Q, HOME_Q, 0.2)
    joints = converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.2)
    assert joints.valid_count == 8, joints.reason
    for q, p, quat in zip(joints.positions, poses.positions, poses.quaternions_xyzw):
        reached_p, reached_r = converter.ee_pose(q)
        assert np.linalg.norm(reached_p - p) <= 1e-3
        assert rot_error(reached_r, Rotation.from_quat(quat).as_matrix()) <= 0.01
    assert np.allclose(joints.positions[:, 6], GRIPPER_HIGH)  # 1 = open


def test_absolute_quaternion_poses_on_the_panda():
    converter = panda(
        {
            "groups": [
                {"type": "ee_position", "mode": "absolute"},
                {"type": "ee_rotation", "mode": "absolute", "format": "quat_wxyz"},
                {"type": "gripper"},
            ]
        }
    )
    rng = np.random.default_rng(1)
    path = PANDA_HOME + np.cumsum(rng.uniform(-0.02, 0.02, (10, 8)), axis=0) * np.r_[np.ones(7), 0]
    actions = []
    for q in path:
        p, r = converter.ee_pose(q)
        actions.append(np.r_[p, Rotation.from_matrix(r).as_quat(scalar_first=True), 0.5])
    joints = converter.to_joint_targets(np.array(actions), PANDA_HOME, PANDA_HOME, 0.1)
    assert joints.valid_count == 10, joints.reason
    for q, a in zip(joints.positions, actions):
        p, r = converter.ee_pose(q)
        assert np.linalg.norm(p - a[:3]) <= 1e-3
        assert rot_error(r, Rotation.from_quat(a[3:7], scalar_first=True).as_matrix()) <= 0.01
    assert np.allclose(joints.positions[:, 7], 0.02)  # half open


@pytest.mark.parametrize("chain", ["cumulative", "from_state"])
def test_relative_joint_positions(chain):
    converter = sim({"preset": "joint_delta", "chain": chain})
    state_q, start_q = HOME_Q, HOME_Q + 0.02
    actions = np.full((3, 7), 0.01)
    got = converter.to_joint_targets(actions, state_q, start_q, 0.1).positions
    expected = start_q + 0.01 * np.arange(1, 4)[:, None] if chain == "cumulative" else np.tile(state_q + 0.01, (3, 1))
    assert np.allclose(got, expected, atol=1e-12)


def test_velocity_integration_is_exact_on_constant_velocities():
    converter = panda({"preset": "droid_joint_velocity"})
    velocity = np.array([0.3, -0.2, 0.1, 0.25, -0.5, 0.4, 1.0])
    actions = np.hstack([np.tile(velocity, (8, 1)), np.zeros((8, 1))])
    start_q = PANDA_HOME + 0.1
    targets = converter.to_joint_targets(actions, PANDA_HOME, start_q, 1 / 15)
    expected = start_q[:7] + np.arange(1, 9)[:, None] * velocity * 3.0 / 15  # DROID: 3 rad/s per unit
    assert np.allclose(targets.positions[:, :7], expected, atol=1e-12, rtol=0)


# ---------------------------------------------------------------- grippers
@pytest.mark.parametrize(
    "override, values, expected",
    [
        ({}, [0.0, 0.4, 0.6, 1.0], [GRIPPER_LOW, GRIPPER_LOW, GRIPPER_HIGH, GRIPPER_HIGH]),  # Bridge: binarised at 0.5
        ({"binarize_threshold": None}, [0.0, 0.25, 1.0, 2.0], [0.0, 0.01, 0.04, 0.04]),  # linear, clipped
        ({"binarize_threshold": None, "invert": True}, [0.0, 0.25, 1.0], [0.04, 0.03, 0.0]),
        ({"binarize_threshold": None, "source_range": [-1, 1], "invert": True}, [-1.0, 0.0, 1.0], [0.04, 0.02, 0.0]),
        ({"binarize_threshold": 0.5, "invert": True}, [0.2, 0.8], [0.04, 0.0]),  # binarised first, then inverted
        ({"binarize_threshold": None, "target_range": [0.01, 0.03]}, [0.0, 0.5, 1.0], [0.01, 0.02, 0.03]),
        (
            {"binarize_threshold": None, "source_range": None},
            [0.015, -1.0, 1.0],
            [0.015, 0.0, 0.04],
        ),  # raw, clipped to the joint
    ],
)
def test_gripper_mapping(override, values, expected):
    converter = sim({"preset": "bridge_ee_delta", "gripper": override})
    actions = np.zeros((len(values), 7))
    actions[:, 6] = values
    assert np.allclose(converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.2).positions[:, 6], expected)


def test_state_vectors():
    libero = sim({"preset": "libero_ee_delta"})
    p, r = SIM_KINEMATICS.frame_pose(SIM_KINEMATICS.frame_id("tcp"), HOME_Q)
    expected = np.r_[p, Rotation.from_matrix(r).as_rotvec(), HOME_Q[6], -HOME_Q[6]]
    assert np.allclose(libero.state_vector(HOME_Q), expected)
    droid = sim({"preset": "droid_joint_velocity"})
    assert np.allclose(droid.state_vector(HOME_Q), np.r_[HOME_Q[:6], 1 - HOME_Q[6] / GRIPPER_HIGH])  # 0 = open
    quat = sim(
        {
            "preset": "bridge_ee_delta",
            "state": {"groups": [{"type": "ee_rotation", "format": "quat_xyzw"}, {"type": "gripper"}]},
        }
    )
    assert np.allclose(
        quat.state_vector(HOME_Q), np.r_[Rotation.from_matrix(r).as_quat(canonical=True), HOME_Q[6] / GRIPPER_HIGH]
    )


# ---------------------------------------------------------------- bad model outputs
@pytest.mark.parametrize("preset", ["bridge_ee_delta", "joint_absolute", "droid_joint_velocity"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_outputs_truncate_the_chunk_with_the_reason(preset, bad):
    converter = sim({"preset": preset})
    actions = np.zeros((5, 7)) if preset != "joint_absolute" else np.tile(HOME_Q, (5, 1))
    actions[3, 1] = bad
    targets = converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.1)
    assert targets.valid_count == 3 and targets.positions.shape == (3, 7)
    assert targets.reason.startswith("point 3: invalid action")


def test_zero_norm_quaternion_truncates_the_chunk():
    converter = sim(
        {"groups": [{"type": "ee_position"}, {"type": "ee_rotation", "format": "quat_xyzw"}, {"type": "gripper"}]}
    )
    actions = np.zeros((4, 8))
    actions[:, 6] = 1.0  # identity rotation delta
    actions[2, 3:7] = 0.0
    targets = converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.1)
    assert targets.valid_count == 2 and "quat_xyzw" in targets.reason


def test_unreachable_ee_target_truncates_without_a_jump():
    converter = sim({"preset": "bridge_ee_delta"})
    actions = np.zeros((10, 7))
    actions[:, 0] = 0.005
    actions[5, 0] = 2.0  # 2 m in one step: out of reach
    dt_s = 0.2
    targets = converter.to_joint_targets(actions, HOME_Q, HOME_Q, dt_s)
    assert targets.valid_count == 5 and "point 5: unreachable" in targets.reason
    jumps = np.abs(np.diff(np.vstack([HOME_Q, targets.positions]), axis=0))
    assert np.all(jumps[:, :6] <= SIM_KINEMATICS.joint_limits().max_velocity[:6] * dt_s + 1e-9)


def test_cartesian_output_twists():
    converter = sim({"preset": "bridge_ee_delta"})
    actions = np.zeros((3, 7))
    actions[:, 1] = 0.01
    actions[:, 5] = 0.05
    targets = converter.to_ee_poses(actions, HOME_Q, HOME_Q, 0.2)
    assert np.allclose(targets.twists(0.2), np.tile([0, 0.05, 0, 0, 0, 0.25], (3, 1)), atol=1e-9)
    joint_space = sim({"preset": "joint_absolute"}).to_ee_poses(np.tile(HOME_Q, (2, 1)), HOME_Q, HOME_Q, 0.1)
    assert np.allclose(joint_space.positions, joint_space.start_position)


def test_ee_values_are_in_the_base_link_frame(tmp_path):
    """The sim arm mounted on a shifted, turned pedestal: in its base link's frame nothing changes."""
    urdf = resolve_package_path("config/urdf/sim_arm.urdf").read_text()
    mount = (
        '<link name="world"/><joint name="mount" type="fixed"><parent link="world"/><child link="base"/>'
        '<origin xyz="0.3 -0.2 0.5" rpy="0.1 -0.2 0.7"/></joint>\n  <link name="base">'
    )
    mounted = tmp_path / "mounted.urdf"
    mounted.write_text(urdf.replace('<link name="base">', mount, 1))
    space = action_space_from_dict({"preset": "libero_ee_delta"})
    kinematics = UrdfKinematics(mounted, JOINT_NAMES)
    converter = ActionSpaceConverter(space, kinematics, JOINT_NAMES, "tcp", "base", gripper_joint="gripper")
    reference = sim({"preset": "libero_ee_delta"}, base_link="")
    assert np.allclose(converter.state_vector(HOME_Q), reference.state_vector(HOME_Q), atol=1e-12)
    actions = np.tile([0.1, -0.1, 0.05, 0.0, 0.1, 0.0, 1.0], (5, 1))
    assert np.allclose(
        converter.to_joint_targets(actions, HOME_Q, HOME_Q, 0.05).positions,
        reference.to_joint_targets(actions, HOME_Q, HOME_Q, 0.05).positions,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"preset": "bridge_ee_delta", "gripper": {"binarize_threshold": None}},
        {"preset": "libero_ee_delta", "chain": "from_state", "gripper": {"binarize_threshold": None}},
        {
            "groups": [
                {"type": "ee_position", "frame": "tool"},
                {"type": "ee_rotation", "frame": "tool", "format": "rot6d"},
                {"type": "gripper"},
            ]
        },
        {
            "groups": [
                {"type": "ee_position", "mode": "absolute"},
                {"type": "ee_rotation", "mode": "absolute", "format": "quat_wxyz"},
                {"type": "gripper"},
            ]
        },
        {"preset": "joint_delta"},
        {"preset": "joint_absolute"},
    ],
)
def test_to_actions_inverts_to_joint_targets(raw):
    """Joint targets -> model actions -> joint targets lands on the same EE poses (the labels of training)."""
    converter = sim(raw)
    q0 = np.array(HOME_Q, dtype=float)
    start = q0 + 0.01  # the plan is a little ahead of the measured joints
    targets = start + 0.015 * np.arange(1, 7)[:, None] * np.array([1.0, -0.5, 0.7, 0.3, -0.4, 0.6, 0.0])
    targets[:, 6] = 0.02
    actions = converter.to_actions(targets, q0, start)
    assert actions.shape == (6, converter.action_dim)
    back = converter.to_joint_targets(actions, q0, start, 0.1)
    assert back.valid_count == 6, back.reason
    for q_back, q_target in zip(back.positions, targets):
        p_back, r_back = pose(converter, q_back) if converter.space.uses_ee else (q_back, np.eye(3))
        p_target, r_target = pose(converter, q_target) if converter.space.uses_ee else (q_target, np.eye(3))
        assert np.linalg.norm(p_back - p_target) <= 1e-3 + 1e-9
        assert rot_error(r_back, r_target) <= 0.01 + 1e-9
    np.testing.assert_allclose(back.positions[:, 6], 0.02, atol=1e-12)
