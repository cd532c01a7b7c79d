"""The fault-injection wrapper: another backend whose predictions fail on purpose (see configuration.py)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend, load_backend
from vla_ros.backends.fault_injection.configuration import FaultInjectionSettings
from vla_ros.backends.settings import resolve_settings
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix


class InjectedFault(RuntimeError):
    """Raised by fault 'raise'."""


class FaultInjectionBackend(Backend):
    def __init__(self, inner: Backend, settings: FaultInjectionSettings):
        self.inner, self.settings = inner, settings
        self.camera_names, self.joint_names = inner.camera_names, inner.joint_names
        self.dt_s, self.horizon, self.supports_prefix = inner.dt_s, inner.horizon, inner.supports_prefix
        self.calls = 0

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        self.calls += 1
        faulty = self.calls > 1 and self.calls % self.settings.every_n == 0
        fault = self.settings.fault if faulty else "none"
        if fault == "raise":
            raise InjectedFault(f"injected fault on call {self.calls}")
        if fault == "slow":
            time.sleep(self.settings.delay_s)
        chunk = self.inner.predict(observation, noise, prefix)
        if fault in ("nan", "inf"):
            positions = chunk.positions.copy()
            positions[len(positions) // 2, 0] = np.nan if fault == "nan" else np.inf
            return dataclasses.replace(chunk, positions=positions)
        if fault == "wrong_shape":
            return dataclasses.replace(chunk, joint_names=chunk.joint_names[:-1], positions=chunk.positions[:, :-1])
        return chunk

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()


def load_fault_injection_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> FaultInjectionBackend:
    """The wrapped backend `inner` loaded from `model_path`; keys of FaultInjectionSettings in
    `overrides` choose the fault, the other keys go to the inner backend."""
    overrides = dict(overrides or {})
    own = {k: overrides.pop(k) for k in FaultInjectionSettings.field_names() if k in overrides}
    settings, sources = resolve_settings(FaultInjectionSettings, [("node parameters", own)] if own else [])
    backend = FaultInjectionBackend(load_backend(settings.inner, model_path, overrides, seed, robot=robot), settings)
    backend.settings_sources = sources
    return backend
