"""The one output (and state) step of every backend: model actions -> joint targets of the robot.

A backend produces unnormalised model actions (H, A) in its checkpoint's convention (an action
space, vla_ros/core/action_space.py) and hands them to `ActionOutput.to_chunk`, which converts them
with the core's ActionSpaceConverter (joint positions absolute or relative, joint velocities, EE
deltas through IK, grippers) into an ActionChunk of absolute joint targets; a chunk that cannot be
converted to the end is truncated at the first bad point and carries the reason. The model's state
input comes from `ActionOutput.state_vector` (joints, EE pose by forward kinematics, gripper).

Which action space, in one rule (`resolve_action_space`): the checkpoint says what its numbers mean
(its `action_space` block: a preset, or groups), the robot says which URDF, end-effector link, base
link and gripper joint (`RobotBody`, from the robot config's `urdf` and `end_effector:`). The robot
config's own `action_space:` block is a default: its preset (or groups) is used for checkpoints that
name none, and a checkpoint that names its own wins (the output's `source` says which, for the log);
its field overrides (`gripper: {...}`, `state: {...}`, `ik: {...}`) apply over the checkpoint's.
A checkpoint with neither is in joint positions of its
joints, absolute or relative to the state per joint (the bundled demo's convention).

Usage from a backend (OpenVLA, a remote policy, ...), after `Backend.bind_robot` built `self.output`:

    state = self.output.state_vector(q)                                     # (S,) model state input
    chunk = self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, inference_s)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.core.action_space import (
    ActionSpace,
    ActionSpaceError,
    JointPosition,
    StateSpace,
    action_space_from_dict,
)
from vla_ros.core.action_space_converter import ActionSpaceConverter
from vla_ros.core.kinematics import KinematicsError, UrdfKinematics
from vla_ros.core.robot_mapping import select_joints
from vla_ros.core.types import ActionChunk, JointLimits, PlanPrefix

_SEMANTIC_KEYS = ("preset", "groups", "chain")  # what the numbers mean: the checkpoint's to say


@dataclass(frozen=True)
class RobotBody:
    """The robot side of an action space (from the robot config).

    joint_names: the robot's joints (command order); camera_names: its cameras; urdf: URDF path ("" = none:
    joint spaces only);
    ee_link / base_link: URDF links (EE values are in the base link's frame; "" = the URDF root);
    gripper_joint: the joint gripper values drive ("" = none); action_space: the robot config's
    `action_space:` block (None = none); limits: position/velocity limits of `joint_names` (None =
    the URDF's); source: where it was read (errors name it).
    """

    joint_names: tuple[str, ...] = ()
    camera_names: tuple[str, ...] = ()
    urdf: str = ""
    ee_link: str = ""
    base_link: str = ""
    gripper_joint: str = ""
    action_space: Mapping[str, Any] | None = None
    limits: JointLimits | None = None
    source: str = "robot"


def joint_space(joints: tuple[str, ...], relative_joints: tuple[str, ...] = ()) -> ActionSpace:
    """Joint positions of `joints` (model order), those in `relative_joints` relative to the state.

    One group per run of consecutive joints of the same mode; the state input is the same joints.
    """
    groups, start = [], 0
    for i in range(1, len(joints) + 1):
        if i == len(joints) or (joints[i] in relative_joints) != (joints[start] in relative_joints):
            mode = "relative" if joints[start] in relative_joints else "absolute"
            groups.append(JointPosition(joints[start:i], mode))
            start = i
    return ActionSpace("joint_positions", tuple(groups), chain="from_state", state=StateSpace((JointPosition(joints),)))


def resolve_action_space(
    checkpoint: Mapping[str, Any] | None, robot: Mapping[str, Any] | None, checkpoint_source: str, robot_source: str
) -> tuple[Mapping[str, Any] | None, str]:
    """(the effective `action_space` block, where its meaning came from): the checkpoint's meaning over the
    robot config's default, the robot's field overrides over the checkpoint's (module docstring).

    The block is None when neither names one.
    """
    robot = dict(robot or {})
    robot_meaning = {k: v for k, v in robot.items() if k in _SEMANTIC_KEYS}
    if not checkpoint:
        if not robot:
            return None, "the joints (no action space named)"
        if not robot_meaning:
            raise ActionSpaceError(
                f"{robot_source}: action_space: overrides {sorted(robot)} but neither the checkpoint nor the robot "
                "config names an action space (preset or groups)"
            )
        return robot, f"{robot_source}: action_space (the robot config's default; the checkpoint names none)"
    merged = dict(checkpoint)
    for key, value in robot.items():
        if key in _SEMANTIC_KEYS:
            continue
        if isinstance(value, Mapping) and isinstance(checkpoint.get(key), Mapping):
            merged[key] = {**checkpoint[key], **value}
        else:
            merged[key] = value
    source = checkpoint_source
    if robot_meaning and any(checkpoint.get(k) != v for k, v in robot_meaning.items()):
        source += f" (over the robot config's default {robot_meaning}, {robot_source})"
    return merged, source


class ActionOutput:
    """Model actions (H, A) <-> joint targets (H, D) of `joint_names`, and the model's state vector (S,).

    Build it with `build_action_output`; `action_dim` (A) and `state_dim` (S) are what the model must
    produce and read.
    """

    def __init__(self, converter: ActionSpaceConverter, source: str = ""):
        self.converter = converter
        self.source = source  # where the action space's meaning came from (checkpoint, robot default, joints)
        self.space = converter.space
        self.joint_names = converter.joint_names
        self.action_dim = converter.action_dim
        self.state_dim = converter.state_dim

    def state_vector(self, q: np.ndarray) -> np.ndarray:
        """(S,) the model's state input at the joints q (D,) in `joint_names` order."""
        return self.converter.state_vector(q)

    def start_q(self, q: np.ndarray, t0_s: float, prefix: PlanPrefix | None) -> np.ndarray:
        """Where the plan is at t0_s (what cumulative deltas start from): the prefix there, else q (D,)."""
        if prefix is None:
            return np.asarray(q, dtype=float)
        positions = select_joints(prefix.joint_names, prefix.positions, self.joint_names, "plan prefix")
        return np.array([np.interp(t0_s, prefix.times_s, positions[:, j]) for j in range(positions.shape[1])])

    def to_chunk(
        self,
        actions: np.ndarray,
        q: np.ndarray,
        t0_s: float,
        dt_s: float,
        prefix: PlanPrefix | None = None,
        inference_s: float = 0.0,
    ) -> ActionChunk:
        """Unnormalised model actions (H, A) -> ActionChunk of absolute joint targets (K <= H points).

        q: (D,) the observed joints (radians); t0_s: the observation's stamp; dt_s: seconds per point;
        prefix: the executor's plan ahead (the start of cumulative deltas; None = q). A point that cannot
        be converted (non-finite, a zero-norm quaternion, unreachable) and all after it are dropped: the
        chunk's `truncated_reason` says why (0 points: nothing to publish).
        """
        actions = np.asarray(actions, dtype=float)
        if actions.ndim != 2 or actions.shape[1] != self.action_dim:
            raise ValueError(
                f"action space '{self.space.name}': actions must be (H, {self.action_dim}), got {actions.shape}"
            )
        targets = self.converter.to_joint_targets(actions, q, self.start_q(q, t0_s, prefix), dt_s)
        return ActionChunk(
            t0_s,
            dt_s,
            self.joint_names,
            targets.positions,
            inference_s,
            truncated_reason=targets.reason,
            ik_failed=targets.ik_failed,
        )

    def to_model_actions(self, targets: np.ndarray, q: np.ndarray, start_q: np.ndarray | None = None) -> np.ndarray:
        """Joint targets (..., H, D) -> model actions (..., H, A): training labels, guidance targets.

        q: (..., D) the observed joints; start_q: (..., D) where cumulative deltas start (default q).
        """
        targets, q = np.asarray(targets, dtype=float), np.asarray(q, dtype=float)
        start_q = q if start_q is None else np.asarray(start_q, dtype=float)
        if targets.ndim == 2:
            return self.converter.to_actions(targets, q, start_q)
        return np.stack([self.to_model_actions(t, s, b) for t, s, b in zip(targets, q, start_q)])


def build_action_output(
    checkpoint_space: Mapping[str, Any] | None,
    model_joints: tuple[str, ...],
    relative_joints: tuple[str, ...] = (),
    robot: RobotBody | None = None,
    checkpoint_source: str = "checkpoint",
) -> ActionOutput:
    """The ActionOutput of a checkpoint on a robot.

    checkpoint_space: the checkpoint's `action_space` block (None: joint positions of `model_joints`,
    `relative_joints` relative to the state); model_joints: the joints the checkpoint reads and
    commands, in model order (empty: the robot's). Raises ActionSpaceError / KinematicsError naming
    the source and the key (an unknown preset, an EE link missing from the URDF, ...).
    """
    robot = robot or RobotBody()
    block, source = resolve_action_space(checkpoint_space, robot.action_space, checkpoint_source, robot.source)
    joints = tuple(model_joints) or tuple(robot.joint_names)
    if not joints:
        raise ActionSpaceError(f"{checkpoint_source}: no joints: neither the checkpoint nor the robot names any")
    if block is None:
        space = joint_space(joints, tuple(relative_joints))
    else:
        space = action_space_from_dict(block, source=checkpoint_source if checkpoint_space else robot.source)
    kinematics = None
    if robot.urdf:
        try:
            kinematics = UrdfKinematics(Path(robot.urdf), joints)
        except KinematicsError as exc:
            raise KinematicsError(f"{robot.source}: urdf: {exc}") from None
    limits = None
    if robot.limits is not None and all(j in robot.limits.names for j in joints):
        index = [robot.limits.names.index(j) for j in joints]
        limits = JointLimits(
            joints, robot.limits.min_position[index], robot.limits.max_position[index], robot.limits.max_velocity[index]
        )
    try:
        converter = ActionSpaceConverter(
            space,
            kinematics,
            joints,
            robot.ee_link if kinematics else "",
            robot.base_link,
            limits=limits,
            gripper_joint=robot.gripper_joint,
        )
    except KinematicsError as exc:
        raise KinematicsError(f"{robot.source}: end_effector: {exc}") from None
    except ActionSpaceError as exc:
        raise ActionSpaceError(f"{robot.source} with {checkpoint_source}: {exc}") from None
    return ActionOutput(converter, source)


def robot_body(cfg) -> RobotBody:
    """The RobotBody of a RobotConfig (vla_ros/config.py): joints, URDF, end effector, action_space block, limits."""
    from vla_ros.paths import resolve_package_path

    ee = cfg.end_effector
    return RobotBody(
        joint_names=cfg.joint_names,
        camera_names=tuple(c.name for c in cfg.cameras),
        urdf=str(resolve_package_path(cfg.urdf)) if cfg.urdf else "",
        ee_link=ee.link if ee else "",
        base_link=ee.base_link if ee else "",
        gripper_joint=ee.gripper_joint if ee else "",
        action_space=cfg.action_space,
        limits=cfg.limits,
        source=cfg.source,
    )
