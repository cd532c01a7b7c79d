"""The shared action output step: model actions <-> joint targets on a robot, which space applies, bad input."""

import numpy as np
import pytest

from vla_ros.backends.action_output import RobotBody, build_action_output, joint_space, resolve_action_space, robot_body
from vla_ros.backends.base import BackendError, load_backend
from vla_ros.config import load_robot_config
from vla_ros.core.action_space import ActionSpaceError
from vla_ros.core.kinematics import KinematicsError
from vla_ros.core.types import Observation, PlanPrefix
from vla_ros.training.train import EE_DELTA_SPACE

SIM = load_robot_config("sim")
JOINTS = SIM.joint_names
Q = np.array([0.1, 0.15, 1.6, 1.2, 0.1, 0.05, 0.03])  # tool over the table


def sim_output(space=EE_DELTA_SPACE, **robot):
    return build_action_output(space, JOINTS, (), robot_body(SIM) if not robot else RobotBody(**robot))


def expert_like_targets(q0: np.ndarray, steps: int = 8) -> np.ndarray:
    """A smooth joint path from q0 (every joint moving), gripper open."""
    t = np.arange(1, steps + 1)[:, None]
    targets = q0 + 0.02 * t * np.array([1.0, -0.5, 0.7, 0.3, -0.4, 0.6, 0.0])
    targets[:, 6] = 0.03
    return targets


def test_joint_space_of_a_relative_mask_is_the_old_delta_rule():
    out = build_action_output(None, JOINTS, JOINTS[:6])
    assert [g.mode for g in out.space.groups] == ["relative", "absolute"] and out.space.chain == "from_state"
    actions = np.random.default_rng(0).normal(size=(5, 7))
    chunk = out.to_chunk(actions, Q, 2.0, 0.1)
    np.testing.assert_allclose(chunk.positions[:, :6], Q[:6] + actions[:, :6])  # every point relative to the state
    np.testing.assert_allclose(chunk.positions[:, 6], actions[:, 6])
    np.testing.assert_allclose(out.to_model_actions(chunk.positions, Q), actions, atol=1e-12)
    np.testing.assert_array_equal(out.state_vector(Q), Q)
    assert joint_space(("a", "b", "c"), ("a", "c")).groups[1].joints == ("b",)  # interleaved: one group per run


def test_ee_delta_labels_convert_back_to_the_expert_poses():
    out = sim_output()
    assert (out.action_dim, out.state_dim) == (7, 10)
    targets = expert_like_targets(Q)
    actions = out.to_model_actions(targets, Q)
    # cumulative base-frame deltas: the first from the pose at Q, each further from the previous target
    p = [out.converter.ee_pose(q)[0] for q in (Q, *targets)]
    np.testing.assert_allclose(actions[:, :3], np.diff(p, axis=0), atol=1e-12)
    chunk = out.to_chunk(actions, Q, 0.0, 0.1)
    assert chunk.horizon == 8 and chunk.truncated_reason == ""
    for q_ik, q_expert in zip(chunk.positions, targets):
        (p_ik, r_ik), (p_ex, r_ex) = out.converter.ee_pose(q_ik), out.converter.ee_pose(q_expert)
        assert np.linalg.norm(p_ik - p_ex) <= 1e-3
        assert np.linalg.norm(r_ik - r_ex) <= 0.02
    np.testing.assert_allclose(chunk.positions[:, 6], 0.03)


def test_state_vector_is_joints_tool_position_gripper():
    out = sim_output()
    state = out.state_vector(Q)
    np.testing.assert_allclose(state[:6], Q[:6])
    np.testing.assert_allclose(state[6:9], out.converter.ee_pose(Q)[0])
    assert state[9] == pytest.approx(0.03)


def test_cumulative_deltas_start_from_the_plan_at_the_observation():
    out = sim_output()
    q_plan = Q + np.array([0.05, 0, 0, 0, 0, 0, 0])
    prefix = PlanPrefix(np.array([0.9, 1.1]), np.vstack([Q, 2 * q_plan - Q]), JOINTS, 1.0)  # at t0 = 1.0: q_plan
    np.testing.assert_allclose(out.start_q(Q, 1.0, prefix), q_plan)
    actions = np.zeros((3, 7))
    actions[:, 6] = 0.03
    chunk = out.to_chunk(actions, Q, 1.0, 0.1, prefix)  # zero deltas: hold the plan's pose, not the measured one
    np.testing.assert_allclose(
        out.converter.ee_pose(chunk.positions[-1])[0], out.converter.ee_pose(q_plan)[0], atol=1e-3
    )


def test_non_finite_and_zero_quaternion_actions_truncate_with_the_reason():
    out = sim_output()
    actions = out.to_model_actions(expert_like_targets(Q), Q)
    actions[3, 1] = np.nan
    chunk = out.to_chunk(actions, Q, 0.0, 0.1)
    assert chunk.horizon == 3 and "point 3" in chunk.truncated_reason and not chunk.ik_failed
    actions[0, 5] = np.inf
    assert out.to_chunk(actions, Q, 0.0, 0.1).horizon == 0
    quat = sim_output({"groups": [{"type": "ee_position"}, {"type": "ee_rotation", "format": "quat_xyzw"}]})
    rows = np.tile([0.0, 0, 0, 0, 0, 0, 1], (4, 1))
    rows[2, 3:] = 0.0  # zero-norm quaternion
    chunk = quat.to_chunk(rows, Q, 0.0, 0.1)
    assert chunk.horizon == 2 and "quat_xyzw" in chunk.truncated_reason


def test_unreachable_targets_are_counted_as_ik_failures():
    out = sim_output()
    actions = np.zeros((4, 7))
    actions[:, 6] = 0.03
    actions[2, 0] = 2.0  # 2 m in one step
    chunk = out.to_chunk(actions, Q, 0.0, 0.1)
    assert chunk.horizon == 2 and chunk.ik_failed and "unreachable" in chunk.truncated_reason


def test_the_checkpoint_says_what_its_numbers_mean_the_robot_which_link():
    ck = {"preset": "bridge_ee_delta", "gripper": {"source_range": None}}
    assert resolve_action_space(ck, None, "ck", "robot") == (ck, "ck")
    block, source = resolve_action_space(None, {"preset": "libero_ee_delta"}, "ck", "robot")
    assert block == {"preset": "libero_ee_delta"} and "the robot config's default" in source
    merged, _ = resolve_action_space(ck, {"gripper": {"invert": True}, "ik": {"max_iterations": 5}}, "ck", "robot")
    assert merged["gripper"] == {"source_range": None, "invert": True} and merged["ik"] == {"max_iterations": 5}
    # the robot config's preset is a default: a checkpoint that names its own wins, and the source says so
    block, source = resolve_action_space(ck, {"preset": "libero_ee_delta", "ik": {"max_iterations": 5}}, "ck", "robot")
    assert block["preset"] == "bridge_ee_delta" and block["ik"] == {"max_iterations": 5}
    assert "over the robot config's default {'preset': 'libero_ee_delta'}" in source
    assert resolve_action_space(None, None, "ck", "robot")[0] is None
    with pytest.raises(ActionSpaceError, match="robot: action_space: overrides \\['ik'\\] but neither"):
        resolve_action_space(None, {"ik": {"max_iterations": 5}}, "ck", "robot")


def test_bad_action_spaces_and_links_fail_naming_the_key_and_value():
    with pytest.raises(ActionSpaceError, match="preset: unknown action space 'bridge_ee'"):
        sim_output({"preset": "bridge_ee"})
    with pytest.raises(KinematicsError, match="has no link 'flange'"):
        sim_output(joint_names=JOINTS, urdf=robot_body(SIM).urdf, ee_link="flange", source="my.yaml")
    with pytest.raises(ActionSpaceError, match="needs a URDF and an end-effector link"):
        build_action_output({"preset": "bridge_ee_delta"}, JOINTS)


def test_octo_backend_runs_an_ee_checkpoint_through_ik(tiny_ee_checkpoint, tiny_nan_ee_checkpoint):
    folder = tiny_ee_checkpoint
    backend = load_backend("octo", folder, robot=robot_body(SIM))
    assert backend.output.space.name == "bridge_ee_delta"
    obs = Observation(
        5.0, {c: np.zeros((32, 32, 3), np.uint8) for c in ("front", "wrist")}, JOINTS, Q, "reach the red cube"
    )
    chunk = backend.predict(obs)
    assert chunk.horizon == 4 and chunk.joint_names == JOINTS and chunk.truncated_reason == ""
    assert np.all(np.abs(chunk.positions[:, :6] - Q[:6]) < 0.1)  # mm-sized steps: small joint motions
    with pytest.raises(BackendError, match="needs a URDF and an end-effector link"):
        load_backend("octo", folder)  # no robot: an EE space cannot run
    chunk = load_backend("octo", tiny_nan_ee_checkpoint, robot=robot_body(SIM)).predict(obs)
    assert chunk.horizon == 0 and "non-finite" in chunk.truncated_reason
