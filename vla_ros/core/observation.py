"""Latest camera frames and joint state, matched by name, with staleness checks.

Callbacks push raw data in (`add_image`, `add_joint_state`); the policy loop asks for a
consistent `Observation` with `snapshot`, which refuses stale or incomplete data with a reason.
Thread-safe: ROS callbacks and the inference thread use it concurrently.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from vla_ros.core.robot_mapping import JointNameError, select_joints
from vla_ros.core.types import Observation


class ObservationError(RuntimeError):
    """The buffer cannot produce an observation now; the message says why."""


@dataclass(frozen=True)
class _Stamped:
    stamp_s: float
    value: np.ndarray


def positions_by_name(names: list[str], positions: list[float], wanted: tuple[str, ...]) -> np.ndarray:
    """Positions (len(wanted),) of the `wanted` joints from a joint state in any order, extras ignored.

    Raises ObservationError for a name/position count mismatch, missing joints or non-finite values.
    """
    try:
        q = select_joints(names, np.asarray(positions, dtype=float), wanted, "joint state").astype(float)
    except JointNameError as exc:
        raise ObservationError(str(exc)) from exc
    if not np.all(np.isfinite(q)):
        raise ObservationError(f"joint state has non-finite positions: {q.tolist()}")
    return q


class ObservationBuffer:
    """Holds the newest frame per camera and the newest joint positions in config order."""

    def __init__(self, camera_names: tuple[str, ...], joint_names: tuple[str, ...]):
        self.camera_names = tuple(camera_names)
        self.joint_names = tuple(joint_names)
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._images: dict[str, _Stamped] = {}
        self._joints: _Stamped | None = None

    def add_image(self, camera: str, stamp_s: float, rgb: np.ndarray) -> bool:
        """Keep the newest frame per camera: one stamped no later than the held frame (out of
        order, or a duplicated stamp) is dropped; returns False then."""
        if camera not in self.camera_names:
            raise ObservationError(f"unknown camera '{camera}' (configured: {list(self.camera_names)})")
        with self._lock:
            held = self._images.get(camera)
            if held is not None and stamp_s <= held.stamp_s:
                return False
            self._images[camera] = _Stamped(stamp_s, rgb)
            self._new_frame.notify_all()
            return True

    def wait_for_frames(self, newer_than_s: float, timeout_s: float) -> bool:
        """Block until every camera has a frame stamped after `newer_than_s` (False on timeout)."""

        def ready():
            return all(c in self._images and self._images[c].stamp_s > newer_than_s for c in self.camera_names)

        with self._lock:
            return self._new_frame.wait_for(ready, timeout=timeout_s)

    def add_joint_state(self, stamp_s: float, names: list[str], positions: list[float]) -> None:
        """Store positions of the configured joints; any order, extra joints ignored.

        Raises ObservationError naming the missing joints, or if a position is not finite.
        """
        q = positions_by_name(names, positions, self.joint_names)
        with self._lock:
            self._joints = _Stamped(stamp_s, q)

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
            self._joints = None

    def snapshot(self, now_s: float, max_age_s: float, instruction: str) -> Observation:
        """The newest complete observation, stamped with the joint state's time.

        Raises ObservationError if a camera or the joint state is missing or older than
        `max_age_s` seconds at `now_s`.
        """
        with self._lock:
            joints = self._joints
            images = dict(self._images)
        if joints is None:
            raise ObservationError("no joint state received yet")
        problems = []
        for cam in self.camera_names:
            if cam not in images:
                problems.append(f"no image from camera '{cam}' yet")
            elif now_s - images[cam].stamp_s > max_age_s:
                problems.append(f"camera '{cam}' image is {now_s - images[cam].stamp_s:.3f} s old")
        if now_s - joints.stamp_s > max_age_s:
            problems.append(f"joint state is {now_s - joints.stamp_s:.3f} s old")
        if problems:
            raise ObservationError("; ".join(problems) + f" (max_observation_age_s={max_age_s})")
        return Observation(
            stamp_s=joints.stamp_s,
            images={c: images[c].value for c in self.camera_names},
            joint_names=self.joint_names,
            joint_positions=joints.value.copy(),
            instruction=instruction,
            image_stamps_s={c: images[c].stamp_s for c in self.camera_names},
        )
