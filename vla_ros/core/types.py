"""Value types that travel between the nodes and the core. Times are seconds, angles radians."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What a backend sees at one instant.

    stamp_s: time of the observation (the joint state's stamp), seconds on the ROS clock.
    images: camera name -> RGB image (H, W, 3) uint8.
    joint_names / joint_positions: (D,) positions in the robot config's joint order.
    instruction: the language goal.
    image_stamps_s: camera name -> stamp of the frame used (for latency accounting).
    """

    stamp_s: float
    images: dict[str, np.ndarray]
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    instruction: str
    image_stamps_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionChunk:
    """A timed sequence of joint position targets.

    positions: (H, D); point i is due at t0_s + (i + 1) * dt_s, or at t0_s + offsets_s[i]
    when explicit offsets are given (trajectories from other sources).
    t0_s: the stamp of the observation the chunk was computed from.
    inference_s: how long the backend took (for scheduling and diagnostics).
    """

    t0_s: float
    dt_s: float
    joint_names: tuple[str, ...]
    positions: np.ndarray
    inference_s: float = 0.0
    offsets_s: np.ndarray | None = None

    def __post_init__(self):
        if self.positions.ndim != 2 or self.positions.shape[1] != len(self.joint_names):
            raise ValueError(f"chunk positions must be (H, {len(self.joint_names)}), got {self.positions.shape}")
        if not self.dt_s > 0:
            raise ValueError(f"chunk dt_s must be > 0, got {self.dt_s}")
        if self.offsets_s is not None:
            offsets = np.asarray(self.offsets_s, dtype=float)
            if offsets.shape != (self.positions.shape[0],):
                raise ValueError(f"chunk has {self.positions.shape[0]} points but {offsets.shape} offsets")
            if offsets.size and (offsets[0] < 0 or np.any(np.diff(offsets) <= 0)):
                raise ValueError(f"chunk time_from_start must be >= 0 and strictly increasing, got {offsets.tolist()}")
            object.__setattr__(self, "offsets_s", offsets)

    @property
    def horizon(self) -> int:
        return self.positions.shape[0]

    def times_s(self) -> np.ndarray:
        """(H,) absolute time of each point."""
        if self.offsets_s is not None:
            return self.t0_s + self.offsets_s
        return self.t0_s + self.dt_s * np.arange(1, self.horizon + 1)


@dataclass(frozen=True)
class PlanPrefix:
    """The executor's plan ahead of now, handed to the next inference for guided (RTC) blending.

    times_s: (K,) absolute seconds, strictly increasing; positions: (K, D) radians in `joint_names`
    order. committed_until_s: the plan before this time runs whatever the next chunk says (the
    chunk cannot arrive earlier), so the chunk must agree with it there.
    """

    times_s: np.ndarray
    positions: np.ndarray
    joint_names: tuple[str, ...]
    committed_until_s: float

    def __post_init__(self):
        times = np.asarray(self.times_s, dtype=float)
        positions = np.asarray(self.positions, dtype=float)
        if times.ndim != 1 or times.size == 0 or positions.shape != (times.size, len(self.joint_names)):
            raise ValueError(
                f"plan prefix needs (K,) times and (K, {len(self.joint_names)}) positions, got {times.shape} and {positions.shape}"
            )
        if np.any(np.diff(times) <= 0) or not np.all(np.isfinite(positions)):
            raise ValueError("plan prefix times must increase strictly and positions be finite")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "positions", positions)

    def in_joint_order(self, joint_names: tuple[str, ...]) -> PlanPrefix:
        """The same prefix with positions (K, len(joint_names)) in `joint_names` order (JointNameError if one is missing)."""
        from vla_ros.core.robot_mapping import select_joints

        positions = select_joints(self.joint_names, self.positions, joint_names, "plan prefix")
        return PlanPrefix(self.times_s, positions, tuple(joint_names), self.committed_until_s)


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits, arrays of shape (D,) in `names` order (ros2_control joint_limits semantics)."""

    names: tuple[str, ...]
    min_position: np.ndarray
    max_position: np.ndarray
    max_velocity: np.ndarray  # rad/s
    max_acceleration: np.ndarray = field(default=None)  # rad/s^2, optional until the full executor
    max_jerk: np.ndarray = field(default=None)  # rad/s^3, optional until the full executor

    def __post_init__(self):
        n = len(self.names)
        for key in ("min_position", "max_position", "max_velocity"):
            value = np.asarray(getattr(self, key), dtype=float)
            if value.shape != (n,):
                raise ValueError(f"joint limit '{key}' must have {n} values, got shape {value.shape}")
            object.__setattr__(self, key, value)
        if np.any(self.min_position >= self.max_position):
            raise ValueError("joint limits: every min_position must be below max_position")
        if np.any(self.max_velocity <= 0):
            raise ValueError("joint limits: every max_velocity must be > 0")
