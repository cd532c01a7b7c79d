"""The no-op backend: the work around a model without the model.

`predict` does what every image backend does before its network (each camera frame fitted into
the model's input size, `core.images.resize_with_pad`, and the joint state read in the backend's
joint order) and returns a chunk that holds the current joint positions. The frame -> chunk time
of a policy node running it is the ROS path's own overhead (`vla_ros.benchmarks.pipeline`). No
checkpoint: `model_path` is ignored.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend, BackendError, backend_joints
from vla_ros.backends.noop.configuration import NoopSettings
from vla_ros.backends.settings import resolve_settings, settings_layers, with_robot_joints
from vla_ros.core.images import resize_with_pad
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix


class NoopBackend(Backend):
    def __init__(self, settings: NoopSettings):
        self.settings = settings
        self.camera_names = settings.cameras
        self.joint_names = settings.joints
        self.horizon = settings.horizon
        self.dt_s = settings.dt_s
        self.last_inputs: dict[str, np.ndarray] = {}  # the prepared frames of the last predict

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, "noop backend")
        size = self.settings.image_size
        try:
            self.last_inputs = {
                c: resize_with_pad(observation.images[c], size, size) if size else observation.images[c]
                for c in self.camera_names
            }
        except KeyError as exc:
            raise BackendError(
                f"noop backend needs cameras {list(self.camera_names)}; observation lacks {exc}"
            ) from exc
        positions = np.repeat(q[None], self.horizon, axis=0)
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, positions, time.perf_counter() - start)


def load_noop_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> NoopBackend:
    """The no-op backend from its settings layers (node parameters over `config/backends/noop.yaml`)."""
    settings, sources = resolve_settings(NoopSettings, settings_layers("noop", None, overrides or {}))
    settings, sources = with_robot_joints(settings, sources, robot, "noop backend")
    if not settings.cameras:
        if robot is None or not robot.camera_names:
            raise BackendError(
                f"noop backend: cameras: none set ({settings.source}) and no robot config to take them from"
            )
        settings = dataclasses.replace(settings, cameras=tuple(robot.camera_names))
        sources = {**sources, "cameras": f"{robot.source}: cameras"}
    backend = NoopBackend(settings)
    backend.settings_sources = sources
    return backend
