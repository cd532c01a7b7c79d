"""The echo backend: chunks that move the first joint from the observed position towards `target` (radians)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.backends.base import Backend, backend_joints
from vla_ros.backends.settings import SettingsBase, resolve_settings, settings_layers, with_robot_joints
from vla_ros.core.types import ActionChunk


@dataclass(frozen=True)
class EchoSettings(SettingsBase):
    joints: tuple[str, ...] = ()  # empty: the robot config's
    target: float = 0.1  # where the first joint goes (radians)
    horizon: int = 5
    dt_s: float = 0.1
    source: str = field(default="<memory>", compare=False)


class EchoBackend(Backend):
    def __init__(self, settings: EchoSettings, cameras: tuple[str, ...]):
        self.settings, self.joint_names, self.camera_names = settings, settings.joints, cameras
        self.horizon, self.dt_s = settings.horizon, settings.dt_s

    def predict(self, observation, noise=None, prefix=None) -> ActionChunk:
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, "echo backend")
        positions = np.repeat(q[None], self.horizon, axis=0)
        positions[:, 0] = np.linspace(q[0], self.settings.target, self.horizon + 1)[1:]
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, positions, 0.0)


def load(model_path, overrides=None, seed=0, robot=None) -> EchoBackend:
    settings, sources = resolve_settings(EchoSettings, settings_layers("echo", None, overrides or {}))
    settings, sources = with_robot_joints(settings, sources, robot, "echo backend")
    backend = EchoBackend(settings, robot.camera_names[:1] if robot else ())
    backend.settings_sources = sources
    return backend
