"""Joint commands -> end-effector commands, for robots driven in Cartesian space.

The executor plans, limits and checks (workspace box included) in joint space; this turns each
command it would send into the pose of a URDF link in a base link's frame (for a Cartesian pose
controller, geometry_msgs/PoseStamped) or into the twist that moves the link from the previous
command's pose to this one in one control period (MoveIt Servo, geometry_msgs/TwistStamped).
Positions in metres, rotations as quaternions (x, y, z, w), twists linear m/s and angular rad/s,
all in the base link's frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.kinematics import KinematicsError, UrdfKinematics


class CartesianCommands:
    """Poses and twists of `link` in `base_link`'s frame ("" = the URDF root) for joint commands (D,)."""

    def __init__(self, kinematics: UrdfKinematics, link: str, base_link: str = ""):
        self.kinematics = kinematics
        self._frame = kinematics.frame_id(link)
        if not kinematics.chain_joints(self._frame):
            joints = list(kinematics.joint_names)
            raise KinematicsError(f"{kinematics.path}: none of the joints {joints} moves '{link}'")
        self.frame_id = base_link or kinematics.model.frames[1].name  # the URDF's root link
        self._base = kinematics.frame_id(self.frame_id)
        self._previous: tuple[np.ndarray, Rotation] | None = None

    def pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) metres and quaternion (4,) x, y, z, w of the link at joints q (D,)."""
        position, rotation = self.kinematics.relative_pose(self._frame, self._base, np.asarray(q, dtype=float))
        return position, Rotation.from_matrix(rotation).as_quat(canonical=True)

    def twist(self, q: np.ndarray, period_s: float) -> np.ndarray:
        """(6,) linear (m/s) and angular (rad/s) velocity from the previous command's pose to q's over period_s.

        Zero for the first command after `reset` (nothing to move from).
        """
        position, quat = self.pose(q)
        rotation = Rotation.from_quat(quat)
        previous, self._previous = self._previous, (position, rotation)
        if previous is None:
            return np.zeros(6)
        linear = (position - previous[0]) / period_s
        angular = (rotation * previous[1].inv()).as_rotvec() / period_s
        return np.concatenate([linear, angular])

    def reset(self) -> None:
        """Forget the previous command (commands stopped: the next twist starts from rest)."""
        self._previous = None
