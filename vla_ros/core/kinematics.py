"""Robot kinematics from a URDF (pinocchio): joint limits, link positions and poses, kinematic chains.

Joint vectors are in the caller's joint order (`joint_names`); URDF joints not named there
(mimic joints, passive fingers) stay at their neutral position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.core.types import JointLimits


class KinematicsError(ValueError):
    """The URDF cannot be used as configured; the message names the file and the problem."""


class UrdfKinematics:
    def __init__(self, urdf_path: str | Path, joint_names: tuple[str, ...]):
        import pinocchio

        self._pin = pinocchio
        path = Path(urdf_path)
        if not path.is_file():
            raise KinematicsError(f"URDF not found: {path}")
        try:
            self.model = pinocchio.buildModelFromUrdf(str(path))
        except (RuntimeError, ValueError) as exc:
            raise KinematicsError(f"{path}: cannot be parsed as URDF: {exc}") from exc
        self.path = path
        self.data = self.model.createData()
        self.joint_names = tuple(joint_names)
        missing = [j for j in self.joint_names if not self.model.existJointName(j)]
        if missing:
            raise KinematicsError(f"{path}: has no joints {missing} (it has {list(self.model.names)[1:]})")
        self._q_index = np.array([self.model.joints[self.model.getJointId(j)].idx_q for j in self.joint_names])
        self._q = pinocchio.neutral(self.model)

    def joint_limits(self) -> JointLimits:
        """Position and velocity limits from the URDF's <limit> tags (acceleration/jerk: none)."""
        lower = self.model.lowerPositionLimit[self._q_index]
        upper = self.model.upperPositionLimit[self._q_index]
        velocity = self.model.velocityLimit[self._q_index]
        return JointLimits(
            self.joint_names, lower, upper, velocity, np.full(len(lower), np.inf), np.full(len(lower), np.inf)
        )

    def frame_id(self, link: str) -> int:
        if not self.model.existFrame(link):
            raise KinematicsError(f"{self.path}: has no link '{link}'")
        return self.model.getFrameId(link)

    def link_position(self, frame_id: int, q: np.ndarray) -> np.ndarray:
        """(3,) position in metres of frame `frame_id` in the URDF's base frame at joints q (D,)."""
        self._q[self._q_index] = q
        self._pin.framesForwardKinematics(self.model, self.data, self._q)
        return self.data.oMf[frame_id].translation.copy()

    def frame_pose(self, frame_id: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) in metres and rotation matrix (3, 3) of frame `frame_id` in the base frame at joints q (D,)."""
        self._q[self._q_index] = q
        self._pin.framesForwardKinematics(self.model, self.data, self._q)
        placement = self.data.oMf[frame_id]
        return placement.translation.copy(), placement.rotation.copy()

    def relative_pose(self, frame_id: int, base_frame_id: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and rotation (3, 3) of frame `frame_id` expressed in frame `base_frame_id` at joints q (D,)."""
        self._q[self._q_index] = q
        self._pin.framesForwardKinematics(self.model, self.data, self._q)
        placement = self.data.oMf[base_frame_id].actInv(self.data.oMf[frame_id])
        return placement.translation.copy(), placement.rotation.copy()

    def chain_joints(self, frame_id: int) -> tuple[str, ...]:
        """The joints of `joint_names` that move frame `frame_id` (its ancestors), in `joint_names` order."""
        parent = self.model.frames[frame_id].parentJoint
        ancestors = {self.model.names[i] for i in self.model.supports[parent].tolist()}
        return tuple(j for j in self.joint_names if j in ancestors)
