"""Cartesian workspace limits: the configured link must stay in a box and out of keep-out boxes.

Checked on joint configurations through forward kinematics; the jerk limiter only accepts
commands from which braking keeps the link inside (so motion stops at the boundary).
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
    """`link_position(q) -> (3,)` must stay in `box` and outside every box of `keep_out`."""

    def __init__(
        self, link: str, box: Box, keep_out: tuple[Box, ...], link_position: Callable[[np.ndarray], np.ndarray]
    ):
        self.link = link
        self.box = box
        self.keep_out = tuple(keep_out)
        self.link_position = link_position

    def violation(self, q: np.ndarray) -> str | None:
        """Why joints q (D,) put the link outside the workspace, or None if they do not."""
        p = self.link_position(q)
        if not self.box.contains(p):
            return f"link '{self.link}' at {np.round(p, 3).tolist()} m leaves the workspace box {self.box.lower.tolist()}..{self.box.upper.tolist()}"
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
        link, Box(lower, upper), tuple(Box(*b) for b in keep_out), lambda q: kinematics.link_position(frame, q)
    )
