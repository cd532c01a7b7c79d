"""Model actions -> joint targets (or end-effector poses), and robot joints -> the model's state vector.

`ActionSpaceConverter` applies an ActionSpace (vla_ros.core.action_space) to one robot:
`joint_names` (D,) in command order, its URDF kinematics, the end-effector link and the base link
whose frame EE values are expressed in. Reference poses of deltas: with `chain: cumulative`
the first step is relative to the plan at the chunk's first point (`start_q`) and each further
step to the previous step's target; with `chain: from_state` every step is relative to the
observed state (`state_q`). EE targets become joints by DifferentialIk, warm-started from
`start_q`, every point within max_velocity * dt_s of the previous one.

A chunk is never converted past a bad point: non-finite values, a zero-norm quaternion or an
unreachable pose truncate it there and the reason is returned with the good prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core import rotations
from vla_ros.core.action_space import (
    ActionSpace,
    ActionSpaceError,
    EePosition,
    EeRotation,
    Gripper,
    Ignore,
    JointPosition,
    JointVelocity,
)
from vla_ros.core.ik import DifferentialIk
from vla_ros.core.kinematics import KinematicsError, UrdfKinematics
from vla_ros.core.types import JointLimits


@dataclass(frozen=True)
class JointTargets:
    """positions: (K, D) joint targets in `joint_names` order for the first K = valid_count of H points.

    reason: why the chunk stops at point K ("" when all H points converted); ik_failed: the IK stopped it
    (an unreachable pose), not an invalid action value.
    """

    positions: np.ndarray
    valid_count: int
    reason: str
    ik_failed: bool = False


@dataclass(frozen=True)
class EeTargets:
    """End-effector targets in the base link's frame for the first K = valid_count points.

    positions: (K, 3) metres; quaternions_xyzw: (K, 4); grippers: (K, G) joint positions of the
    gripper groups; start_position / start_quaternion_xyzw: the pose of the plan at the chunk's
    first point (what the first target moves from); reason as in JointTargets.
    """

    positions: np.ndarray
    quaternions_xyzw: np.ndarray
    grippers: np.ndarray
    valid_count: int
    reason: str
    start_position: np.ndarray
    start_quaternion_xyzw: np.ndarray

    def twists(self, dt_s: float) -> np.ndarray:
        """(K, 6) velocities between consecutive targets: linear m/s, angular rad/s, base frame (for a Twist)."""
        positions = np.vstack([self.start_position, self.positions])
        quats = np.vstack([self.start_quaternion_xyzw, self.quaternions_xyzw])
        rots = Rotation.from_quat(quats)
        angular = (rots[1:] * rots[:-1].inv()).as_rotvec() / dt_s
        return np.hstack([np.diff(positions, axis=0) / dt_s, angular])


class ActionSpaceConverter:
    """Converts action chunks of `space` into this robot's joints (see the module docstring).

    kinematics: UrdfKinematics built for `joint_names` (None: joint spaces without EE state only).
    ee_link / base_link: URDF links ("" base = the URDF root). limits: (D,) position and velocity
    limits (the robot config's); default: the URDF's. gripper_joint: the robot's gripper joint, the
    default of gripper groups that name none. Raises ActionSpaceError / KinematicsError
    at construction when the space cannot run on this robot.
    """

    def __init__(
        self,
        space: ActionSpace,
        kinematics: UrdfKinematics | None,
        joint_names: tuple[str, ...],
        ee_link: str = "",
        base_link: str = "",
        limits: JointLimits | None = None,
        gripper_joint: str = "",
    ):
        self.space = space
        self.gripper_joint = gripper_joint
        self.joint_names = tuple(joint_names)
        if kinematics is not None and tuple(kinematics.joint_names) != self.joint_names:
            raise ActionSpaceError(
                f"kinematics joints {list(kinematics.joint_names)} differ from the joint names {list(self.joint_names)}"
            )
        if limits is None and kinematics is not None:
            limits = kinematics.joint_limits()
        if limits is not None and tuple(limits.names) != self.joint_names:
            raise ActionSpaceError(f"limits are for {list(limits.names)}, not {list(self.joint_names)}")
        self.limits = limits
        needs_ee = space.uses_ee or any(isinstance(g, (EePosition, EeRotation)) for g in space.state.groups)
        self._ik = None
        self.arm_joints: tuple[str, ...] = ()
        if needs_ee and (kinematics is None or not ee_link):
            raise ActionSpaceError(
                f"action space '{space.name}' uses end-effector poses: it needs a URDF and an end-effector link"
            )
        if kinematics is not None and ee_link:
            self._setup_ee(kinematics, ee_link, base_link)
        self._grippers = [
            self._gripper_joint(g, f"groups[{i}]") for i, g in enumerate(space.groups) if isinstance(g, Gripper)
        ]
        self._gripper_ranges = [
            self._target_range(g, j) for g, (j, _) in zip(self._gripper_groups(space.groups), self._grippers)
        ]
        self._slices = self._layout(space.groups)
        self._joint_groups = self._resolve_joint_groups(space.groups, "groups")
        self._check_single_driver()
        self._state_joint_groups = self._resolve_joint_groups(space.state.groups, "state.groups")
        self._state_grippers = [
            (self._gripper_joint(g, f"state.groups[{i}]")[1], g)
            for i, g in enumerate(space.state.groups)
            if isinstance(g, Gripper)
        ]
        self.action_dim = self._slices[-1].stop
        self._used_columns = np.ones(self.action_dim, dtype=bool)
        for group, columns in zip(space.groups, self._slices):
            self._used_columns[columns] = not isinstance(group, Ignore)
        self.state_dim = sum(self._group_size(g) for g in space.state.groups)

    # ------------------------------------------------------------------ configuration
    def _setup_ee(self, kinematics: UrdfKinematics, ee_link: str, base_link: str) -> None:
        ee_frame = kinematics.frame_id(ee_link)
        self.arm_joints = kinematics.chain_joints(ee_frame)
        if not self.arm_joints:
            raise KinematicsError(f"{kinematics.path}: none of the joints {list(self.joint_names)} moves '{ee_link}'")
        self._ik = DifferentialIk(kinematics, ee_link, self.arm_joints, self.limits, self.space.ik)
        self._arm_idx = np.array([self.joint_names.index(j) for j in self.arm_joints])
        self._base_position, self._base_rotation = np.zeros(3), np.eye(3)
        if base_link:
            base_frame = kinematics.frame_id(base_link)
            moving = kinematics.chain_joints(base_frame)
            if moving:
                raise KinematicsError(f"{kinematics.path}: base link '{base_link}' is moved by joints {list(moving)}")
            self._base_position, self._base_rotation = kinematics.frame_pose(
                base_frame, np.zeros(len(self.joint_names))
            )

    def _gripper_groups(self, groups):
        return [g for g in groups if isinstance(g, Gripper)]

    def _gripper_joint(self, group: Gripper, key: str) -> tuple[str, int]:
        joint = group.joint or self.gripper_joint
        if not joint:
            raise ActionSpaceError(
                f"{key}.joint: no gripper joint (set it here or as the robot's gripper joint; "
                "a gripper value this robot does not take is an `ignore` group)"
            )
        if joint not in self.joint_names:
            raise ActionSpaceError(f"{key}.joint: {joint!r} is not one of the joints {list(self.joint_names)}")
        return joint, self.joint_names.index(joint)

    def _target_range(self, group: Gripper, joint: str) -> tuple[float, float]:
        if group.target_range is not None:
            return group.target_range
        if self.limits is None:
            raise ActionSpaceError(f"gripper '{joint}': target_range needed (no joint limits given)")
        i = self.joint_names.index(joint)
        return float(self.limits.min_position[i]), float(self.limits.max_position[i])

    def action_slices(self) -> list[slice]:
        """Where each action group's values sit in an action row."""
        return self._layout(self.space.groups)

    def _layout(self, groups) -> list[slice]:
        slices, start = [], 0
        for group in groups:
            size = self._group_size(group)
            slices.append(slice(start, start + size))
            start += size
        return slices

    def _group_size(self, group) -> int:
        if isinstance(group, (JointPosition, JointVelocity)):
            return len(self._default_joints(group))
        if isinstance(group, EePosition):
            return 3
        if isinstance(group, EeRotation):
            return rotations.ROTATION_DIMS[group.format]
        return group.size

    def _default_joints(self, group) -> tuple[str, ...]:
        if group.joints:
            return group.joints
        gripper_joints = {j for j, _ in self._grippers}
        return tuple(j for j in self.joint_names if j not in gripper_joints)

    def _resolve_joint_groups(self, groups, key: str) -> dict[int, np.ndarray]:
        """group index -> (n,) indices into joint_names of its joints."""
        resolved = {}
        for i, group in enumerate(groups):
            if isinstance(group, (JointPosition, JointVelocity)):
                joints = self._default_joints(group)
                unknown = [j for j in joints if j not in self.joint_names]
                if unknown or not joints:
                    raise ActionSpaceError(
                        f"{key}[{i}].joints: {list(unknown) or 'none'} not among the joints {list(self.joint_names)}"
                    )
                resolved[i] = np.array([self.joint_names.index(j) for j in joints])
        return resolved

    def _check_single_driver(self) -> None:
        driven: dict[str, str] = {}
        claims = [
            (f"groups[{i}] {self.space.groups[i].type}", [self.joint_names[k] for k in idx])
            for i, idx in self._joint_groups.items()
        ]
        claims += [(f"gripper {j}", [j]) for j, _ in self._grippers]
        if self.space.uses_ee:
            claims.append(("end effector (IK)", list(self.arm_joints)))
        for who, joints in claims:
            for j in joints:
                if j in driven:
                    raise ActionSpaceError(f"joint '{j}' is driven by both {driven[j]} and {who}")
                driven[j] = who

    # ------------------------------------------------------------------ conversion
    def to_joint_targets(
        self, actions: np.ndarray, state_q: np.ndarray, start_q: np.ndarray, dt_s: float
    ) -> JointTargets:
        """Joint targets (K, D) for actions (H, A).

        state_q: (D,) the observed joints; start_q: (D,) the plan at the chunk's first point; dt_s: seconds per step.
        """
        actions, state_q, start_q, count, reason = self._prepare(actions, state_q, start_q, dt_s)
        actions, ik_failed = actions[:count], False
        out = np.tile(start_q, (count, 1))
        for i, idx in self._joint_groups.items():
            values = actions[:, self._slices[i]]
            group = self.space.groups[i]
            if isinstance(group, JointVelocity):
                out[:, idx] = start_q[idx] + dt_s * group.scale * np.cumsum(values, axis=0)
            elif group.mode == "absolute":
                out[:, idx] = values
            elif self.space.chain == "cumulative":
                out[:, idx] = start_q[idx] + np.cumsum(values, axis=0)
            else:
                out[:, idx] = state_q[idx] + values
        for (joint, j), column in zip(self._grippers, self._gripper_columns(actions)):
            out[:, j] = column
        if self.space.uses_ee and count:
            positions, rots = self._ee_targets(actions, state_q, start_q)
            root_p = positions @ self._base_rotation.T + self._base_position
            root_r = self._base_rotation @ rots
            result = self._ik.solve(root_p, root_r, start_q[self._arm_idx], dt_s)
            out[: result.valid_count, self._arm_idx] = result.positions
            if result.valid_count < count:
                count, reason, ik_failed = result.valid_count, result.reason, True
        return JointTargets(out[:count], count, reason, ik_failed)

    def to_ee_poses(self, actions: np.ndarray, state_q: np.ndarray, start_q: np.ndarray, dt_s: float) -> EeTargets:
        """The EE targets (base frame) of actions (H, A), without IK (joint spaces: FK of their joint targets)."""
        if self._ik is None:
            raise ActionSpaceError(f"action space '{self.space.name}': EE poses need a URDF and an end-effector link")
        start_p, start_r = self.ee_pose(start_q)
        if self.space.uses_ee:
            actions, state_q, start_q, count, reason = self._prepare(actions, state_q, start_q, dt_s)
            actions = actions[:count]
            positions, rots = (
                self._ee_targets(actions, state_q, start_q) if count else (np.zeros((0, 3)), np.zeros((0, 3, 3)))
            )
            grippers = np.stack(self._gripper_columns(actions), axis=1) if self._grippers else np.zeros((count, 0))
        else:
            targets = self.to_joint_targets(actions, state_q, start_q, dt_s)
            count, reason = targets.valid_count, targets.reason
            poses = [self.ee_pose(q) for q in targets.positions]
            positions = np.array([p for p, _ in poses]).reshape(-1, 3)
            rots = np.array([r for _, r in poses]).reshape(-1, 3, 3)
            grippers = targets.positions[:, [j for _, j in self._grippers]]
        quats = Rotation.from_matrix(rots).as_quat(canonical=True) if count else np.zeros((0, 4))
        start_quat = Rotation.from_matrix(start_r).as_quat(canonical=True)
        return EeTargets(positions, quats, grippers, count, reason, start_p, start_quat)

    def to_actions(self, targets: np.ndarray, state_q: np.ndarray, start_q: np.ndarray) -> np.ndarray:
        """The inverse of `to_joint_targets`: model actions (H, A) that convert to joint targets (H, D).

        For training labels (the expert's joint targets recorded as this space's actions) and for guidance
        towards a joint plan. Joint velocities are not inverted (ActionSpaceError); `ignore` columns are 0;
        binarised grippers give their normalised value. state_q / start_q (D,) as in `to_joint_targets`.
        """
        targets = np.asarray(targets, dtype=float)
        if targets.ndim != 2 or targets.shape[1] != len(self.joint_names):
            raise ValueError(f"targets must be (H, {len(self.joint_names)}), got {targets.shape}")
        state_q, start_q = self._vector(state_q, "state_q"), self._vector(start_q, "start_q")
        cumulative = self.space.chain == "cumulative"
        out = np.zeros((len(targets), self.action_dim))
        for i, idx in self._joint_groups.items():
            group = self.space.groups[i]
            if isinstance(group, JointVelocity):
                raise ActionSpaceError(f"action space '{self.space.name}': joint velocities are not inverted")
            values = targets[:, idx]
            if group.mode == "relative":
                values = np.diff(np.vstack([start_q[idx], values]), axis=0) if cumulative else values - state_q[idx]
            out[:, self._slices[i]] = values
        grippers = iter(self._grippers)
        for i, group in enumerate(self.space.groups):
            if isinstance(group, Gripper):
                joint, j = next(grippers)
                out[:, self._slices[i]][:, 0] = [self._gripper_to_model(group, v, joint) for v in targets[:, j]]
        if self.space.uses_ee and len(targets):
            out[:, self._ee_columns()] = self._ee_actions(targets, state_q, start_q)
        return out

    def state_vector(self, q: np.ndarray) -> np.ndarray:
        """(S,) the model's state input at joints q (D,)."""
        q = self._vector(q, "joint positions")
        parts = []
        pose = (
            self.ee_pose(q) if any(isinstance(g, (EePosition, EeRotation)) for g in self.space.state.groups) else None
        )
        grippers = iter(self._state_grippers)
        for i, group in enumerate(self.space.state.groups):
            if isinstance(group, JointPosition):
                parts.append(q[self._state_joint_groups[i]])
            elif isinstance(group, EePosition):
                parts.append(pose[0])
            elif isinstance(group, EeRotation):
                parts.append(rotations.from_matrix(pose[1], group.format))
            else:
                j, gripper = next(grippers)
                value = self._gripper_to_model(gripper, q[j], self.joint_names[j])
                parts.append(value * np.array(gripper.signs))
        return np.concatenate(parts) if parts else np.zeros(0)

    def ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EE position (3,) metres and rotation (3, 3) in the base link's frame at joints q (D,)."""
        p, r = self._ik.forward(np.asarray(q, dtype=float)[self._arm_idx])
        return self._base_rotation.T @ (p - self._base_position), self._base_rotation.T @ r

    # ------------------------------------------------------------------ helpers
    def _prepare(self, actions, state_q, start_q, dt_s):
        actions = np.asarray(actions, dtype=float)
        if actions.ndim != 2 or actions.shape[1] != self.action_dim:
            raise ValueError(
                f"action space '{self.space.name}': actions must be (H, {self.action_dim}), got {actions.shape}"
            )
        if not dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        state_q, start_q = self._vector(state_q, "state_q"), self._vector(start_q, "start_q")
        count, reason = self._valid_prefix(actions)
        return actions, state_q, start_q, count, reason

    def _vector(self, q, name: str) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (len(self.joint_names),) or not np.all(np.isfinite(q)):
            raise ValueError(f"{name} must be {len(self.joint_names)} finite values, got {q.tolist()}")
        return q

    def _valid_prefix(self, actions: np.ndarray) -> tuple[int, str]:
        """How many leading rows are usable, and why the next is not."""
        bad = ~np.isfinite(actions[:, self._used_columns]).all(axis=1)
        for i, group in enumerate(self.space.groups):
            if isinstance(group, EeRotation):
                bad |= ~rotations.valid_rows(actions[:, self._slices[i]], group.format)
        if not bad.any():
            return actions.shape[0], ""
        k = int(np.argmax(bad))
        return (
            k,
            f"point {k}: invalid action (non-finite, or a degenerate {self._rotation_format()} rotation): "
            f"{np.round(actions[k], 6).tolist()}",
        )

    def _rotation_format(self) -> str:
        return next((g.format for g in self.space.groups if isinstance(g, EeRotation)), "")

    def _gripper_columns(self, actions: np.ndarray) -> list[np.ndarray]:
        groups = self._gripper_groups(self.space.groups)
        slices = [self._slices[i] for i, g in enumerate(self.space.groups) if isinstance(g, Gripper)]
        return [
            self._gripper_to_joint(g, actions[:, s][:, 0], r) for g, s, r in zip(groups, slices, self._gripper_ranges)
        ]

    @staticmethod
    def _gripper_to_joint(group: Gripper, values: np.ndarray, target: tuple[float, float]) -> np.ndarray:
        """Model values (H,) -> joint positions (H,) (see Gripper)."""
        low, high = target
        if group.source_range is None:
            return np.clip(values, min(low, high), max(low, high))
        u = np.clip((values - group.source_range[0]) / (group.source_range[1] - group.source_range[0]), 0.0, 1.0)
        if group.binarize_threshold is not None:
            u = (u > group.binarize_threshold).astype(float)
        if group.invert:
            u = 1.0 - u
        return low + u * (high - low)

    def _gripper_to_model(self, group: Gripper, value: float, joint: str) -> float:
        """The state's gripper joint position -> model units (the inverse of _gripper_to_joint without binarising)."""
        if group.source_range is None:
            return float(value)
        low, high = self._target_range(group, joint)
        u = float(np.clip((value - low) / (high - low), 0.0, 1.0))
        if group.invert:
            u = 1.0 - u
        return group.source_range[0] + u * (group.source_range[1] - group.source_range[0])

    def _ee_targets(
        self, actions: np.ndarray, state_q: np.ndarray, start_q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """EE positions (H, 3) and rotations (H, 3, 3) in the base frame for valid actions (H, A)."""
        cumulative = self.space.chain == "cumulative"
        ref_p, ref_r = self.ee_pose(start_q if cumulative else state_q)
        pos_group = rot_group = None
        for i, group in enumerate(self.space.groups):
            if isinstance(group, EePosition):
                pos_group, pos_values = group, actions[:, self._slices[i]] * group.scale
            elif isinstance(group, EeRotation):
                rot_group, rot_values = group, actions[:, self._slices[i]]
        rots = self._chain_rotations(rot_group, rot_values if rot_group else None, ref_r, cumulative, len(actions))
        if pos_group is None:
            return np.tile(ref_p, (len(actions), 1)), rots
        if pos_group.mode == "absolute":
            return pos_values.copy(), rots
        if pos_group.frame == "tool":  # each step along the axes of the pose it starts from
            frames = np.concatenate([ref_r[None], rots[:-1]]) if cumulative else ref_r[None]
            pos_values = np.einsum("hij,hj->hi", np.broadcast_to(frames, rots.shape), pos_values)
        return ref_p + (np.cumsum(pos_values, axis=0) if cumulative else pos_values), rots

    def _ee_columns(self) -> np.ndarray:
        """Column indices of the ee_position and ee_rotation groups, in that order."""
        kinds = (EePosition, EeRotation)
        slices = [self._slices[i] for k in kinds for i, g in enumerate(self.space.groups) if isinstance(g, k)]
        return np.concatenate([np.arange(s.start, s.stop) for s in slices])

    def _ee_actions(self, targets: np.ndarray, state_q: np.ndarray, start_q: np.ndarray) -> np.ndarray:
        """ee_position / ee_rotation values (H, 3 + k) whose `_ee_targets` are the FK poses of joint targets (H, D)."""
        cumulative = self.space.chain == "cumulative"
        ref_p, ref_r = self.ee_pose(start_q if cumulative else state_q)
        poses = [self.ee_pose(q) for q in targets]
        positions, rots = np.array([p for p, _ in poses]), np.array([r for _, r in poses])
        prev_p = np.vstack([ref_p[None], positions[:-1]]) if cumulative else np.broadcast_to(ref_p, positions.shape)
        prev_r = np.concatenate([ref_r[None], rots[:-1]]) if cumulative else np.broadcast_to(ref_r, rots.shape)
        parts = []
        for group in self.space.groups:
            if isinstance(group, EePosition):
                if group.mode == "absolute":
                    values = positions
                elif group.frame == "base":
                    values = positions - prev_p
                else:  # along the axes of the pose each step starts from
                    values = np.einsum("hji,hj->hi", prev_r, positions - prev_p)
                parts.append((0, values / group.scale))
        for group in self.space.groups:
            if isinstance(group, EeRotation):
                if group.mode == "absolute":
                    deltas = rots
                elif group.frame == "base":  # R_k = D_k R_prev
                    deltas = rots @ np.swapaxes(prev_r, 1, 2)
                else:  # R_k = R_prev D_k
                    deltas = np.swapaxes(prev_r, 1, 2) @ rots
                parts.append((1, rotations.from_matrix(deltas, group.format) / group.scale))
        return np.hstack([values for _, values in sorted(parts, key=lambda part: part[0])])

    @staticmethod
    def _chain_rotations(group: EeRotation | None, values, ref_r: np.ndarray, cumulative: bool, horizon: int):
        """(H, 3, 3) target rotations from the rotation group's values (H, k) and the reference rotation."""
        if group is None:
            return np.broadcast_to(ref_r, (horizon, 3, 3)).copy()
        deltas = rotations.to_matrix(values * group.scale if group.scale != 1.0 else values, group.format)
        if group.mode == "absolute":
            return deltas
        base = group.frame == "base"  # base: left-multiplied (about base axes); tool: right-multiplied
        if not cumulative:
            return deltas @ ref_r if base else ref_r @ deltas
        out, current = np.empty_like(deltas), ref_r
        for k in range(horizon):
            current = deltas[k] @ current if base else current @ deltas[k]
            out[k] = current
        return out
