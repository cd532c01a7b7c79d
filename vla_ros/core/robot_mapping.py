"""How a robot talks to a model: model image slots <- robot cameras, robot joints -> state/action dims.

One rule for joint names everywhere (observations, chunks, plan prefixes, backends): joints are
matched by name, in any order, extra joints are ignored, and a missing joint is an error that names
it. `select_joints` is the one reorder helper; the policy core checks a backend's joints and cameras
against the robot's once, at configure time, so a wrong robot config fails before the first frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class JointNameError(ValueError):
    """Joints are missing from a message or a config; the message names them."""


def select_joints(names: Sequence[str], values: np.ndarray, wanted: Sequence[str], what: str = "input") -> np.ndarray:
    """values (..., len(names)) -> (..., len(wanted)) in `wanted` order; extra names are ignored.

    Raises JointNameError naming the joints of `wanted` that `names` lacks (`what` says whose).
    """
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise JointNameError(f"{what} lacks joints {missing} (has {list(names)})")
    values = np.asarray(values)
    if values.shape[-1] != len(names):
        raise JointNameError(f"{what} has {len(names)} joint names but {values.shape[-1]} values")
    return values[..., [index[n] for n in wanted]]


@dataclass(frozen=True)
class RobotMapping:
    """The robot side of a checkpoint.

    joints: robot joint of model state/action dim i (radians; a gripper as the robot reports it).
    cameras: model image slot -> robot camera name; model slots without a camera are masked.
    relative_joints: joints the model predicts relative to the current state (the rest absolute).
    source: where the mapping was read from (for error messages).
    """

    joints: tuple[str, ...]
    cameras: Mapping[str, str]
    relative_joints: tuple[str, ...] = ()
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "relative_joints", tuple(self.relative_joints))
        object.__setattr__(self, "cameras", dict(self.cameras))
        if not self.joints or len(set(self.joints)) != len(self.joints):
            raise ValueError(f"{self.source}: joints: need a non-empty list of distinct names, got {list(self.joints)}")
        stray = [j for j in self.relative_joints if j not in self.joints]
        if stray:
            raise ValueError(f"{self.source}: relative_joints: {stray} are not in joints {list(self.joints)}")
        if not self.cameras:
            raise ValueError(f"{self.source}: cameras: map at least one model image slot to a robot camera")

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> RobotMapping:
        """From a settings block `{joints: [...], cameras: {slot: robot camera}, relative_joints: [...]}`."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping with joints and cameras, got {raw!r}")
        joints, cameras, relative = raw.get("joints"), raw.get("cameras"), raw.get("relative_joints", [])
        if not (
            isinstance(joints, Sequence) and not isinstance(joints, str) and all(isinstance(j, str) for j in joints)
        ):
            raise ValueError(f"{where}: joints: must be a list of joint names, got {joints!r}")
        if not (
            isinstance(cameras, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in cameras.items())
        ):
            raise ValueError(f"{where}: cameras: must map model slot -> robot camera, got {cameras!r}")
        if not (
            isinstance(relative, Sequence)
            and not isinstance(relative, str)
            and all(isinstance(j, str) for j in relative)
        ):
            raise ValueError(f"{where}: relative_joints: must be a list of joint names, got {relative!r}")
        return cls(tuple(joints), dict(cameras), tuple(relative), where)

    @property
    def relative_mask(self) -> np.ndarray:
        """(D,) bool: dim i is predicted relative to the state."""
        return np.array([j in self.relative_joints for j in self.joints], dtype=bool)

    @property
    def robot_cameras(self) -> tuple[str, ...]:
        """The robot cameras the model reads, each once, in slot order."""
        return tuple(dict.fromkeys(self.cameras.values()))

    def check_slots(self, slots: Sequence[str]) -> None:
        """ValueError unless every mapped slot is one of the model's `slots`."""
        bad = sorted(s for s in self.cameras if s not in slots)
        if bad:
            raise ValueError(f"{self.source}: cameras: unknown model image slots {bad} (the model has {list(slots)})")
