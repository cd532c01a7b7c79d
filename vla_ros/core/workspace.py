"""Cartesian workspace limits: the configured link must stay in a box and out of keep-out boxes.

Checked on joint configurations through forward kinematics; the jerk limiter only accepts
commands from which braking keeps the link inside (so motion stops at the boundary).

`clearance` and `link_speed_bound_m_per_rad` let that check skip forward kinematics along a
motion: the link moves at most sum_j bound_j |dq_j| metres, so a joint motion whose excursion
stays below the clearance of its start cannot leave the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in the robot's base frame, metres: lower (3,), upper (3,)."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self):
        lower, upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lower.shape != (3,) or upper.shape != (3,) or np.any(lower >= upper):
            raise ValueError(f"a box needs min (3,) < max (3,), got {lower.tolist()} and {upper.tolist()}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    def contains(self, point: np.ndarray) -> bool:
        return bool(np.all(point >= self.lower) and np.all(point <= self.upper))


class Workspace:
    """`link_position(q) -> (3,)` must stay in `box` and outside every box of `keep_out`.

    link_speed_bound_m_per_rad: optional (D,) bounds on |d link_position / d q_j| over all
    configurations (metres per radian; metres per metre for prismatic joints).
    """

    def __init__(
        self,
        link: str,
        box: Box,
        keep_out: tuple[Box, ...],
        link_position: Callable[[np.ndarray], np.ndarray],
        link_speed_bound_m_per_rad: np.ndarray | None = None,
    ):
        self.link = link
        self.box = box
        self.keep_out = tuple(keep_out)
        self.link_position = link_position
        self.link_speed_bound_m_per_rad = link_speed_bound_m_per_rad
        self._keep_out_lower = np.array([b.lower for b in self.keep_out]).reshape(-1, 3)
        self._keep_out_upper = np.array([b.upper for b in self.keep_out]).reshape(-1, 3)

    def clearance(self, q: np.ndarray) -> float:
        """Metres the link at joints q (D,) can move in any direction and stay inside (a lower bound
        on its distance to the workspace's boundary); negative outside."""
        p = self.link_position(q)
        inside = min((p - self.box.lower).min(), (self.box.upper - p).min())
        if not self.keep_out:
            return float(inside)
        # per keep-out box, the largest per-axis gap: the point is outside iff it is positive
        gap = np.maximum(self._keep_out_lower - p, p - self._keep_out_upper).max(axis=1).min()
        return float(min(inside, gap))

    def violation(self, q: np.ndarray) -> str | None:
        """Why joints q (D,) put the link outside the workspace, or None if they do not."""
        p = self.link_position(q)
        if not self.box.contains(p):
            box = f"{self.box.lower.tolist()}..{self.box.upper.tolist()}"
            return f"link '{self.link}' at {np.round(p, 3).tolist()} m leaves the workspace box {box}"
        for i, box in enumerate(self.keep_out):
            if box.contains(p):
                return f"link '{self.link}' at {np.round(p, 3).tolist()} m enters keep-out box {i}"
        return None

    def contains(self, q: np.ndarray) -> bool:
        return self.violation(q) is None


def urdf_workspace(urdf_path, joint_names: tuple[str, ...], link: str, lower, upper, keep_out: tuple = ()) -> Workspace:
    """A Workspace whose link position comes from the URDF's forward kinematics (pinocchio).

    keep_out: ((min (3,), max (3,)), ...) boxes; all coordinates in metres, URDF base frame.
    """
    from vla_ros.core.kinematics import UrdfKinematics

    kinematics = UrdfKinematics(urdf_path, joint_names)
    frame = kinematics.frame_id(link)
    return Workspace(
        link,
        Box(lower, upper),
        tuple(Box(*b) for b in keep_out),
        lambda q: kinematics.link_position(frame, q),
        link_speed_bound(kinematics, frame),
    )


def link_speed_bound(kinematics, frame_id: int) -> np.ndarray | None:
    """(D,) bounds on |d p / d q_j| of frame `frame_id` (metres per radian, or per metre for a
    prismatic joint), D = kinematics.joint_names; None if the chain has other joint types.

    A revolute joint moves the frame at most by its distance from the joint's axis, which is at
    most the summed lengths of the joint placements after it (plus the prismatic joints' reach);
    joints that do not carry the frame do not move it."""
    model = kinematics.model
    chain = list(model.supports[model.frames[frame_id].parentJoint])[1:]  # joint ids, base first
    lever = float(np.linalg.norm(model.frames[frame_id].placement.translation))  # from the joint's origin to the frame
    bound: dict[int, float] = {}
    for jid in reversed(chain):
        kind = model.joints[jid].shortname()
        if kind.startswith(("JointModelP", "JointModelPrismatic")):
            bound[jid] = 1.0
            q_index = model.joints[jid].idx_q
            lever += max(abs(model.lowerPositionLimit[q_index]), abs(model.upperPositionLimit[q_index]))
        elif kind.startswith(("JointModelR", "JointModelRevolute")):
            bound[jid] = lever
        else:
            return None
        lever += float(np.linalg.norm(model.jointPlacements[jid].translation))
    return np.array([bound.get(model.getJointId(name), 0.0) for name in kinematics.joint_names])
