"""The fault-injection wrapper: another backend whose predictions fail on purpose (see configuration.py)."""

from __future__ import annotations

import ctypes
import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend, load_backend
from vla_ros.backends.settings import resolve_settings
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros_test_backends.fault_injection.configuration import FaultInjectionSettings


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
        if fault == "hang":
            hold_the_interpreter(self.settings.delay_s)
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

    def new_episode_state(self, seed: int) -> dict[str, Any]:
        return self.inner.new_episode_state(seed)

    @contextmanager
    def episode_state(self, state: dict[str, Any]) -> Iterator[None]:
        with self.inner.episode_state(state):
            yield

    def close(self) -> None:
        self.inner.close()


def hold_the_interpreter(seconds: float) -> None:
    """Sleep `seconds` (0: until killed) in C while holding Python's interpreter lock (a `ctypes.PyDLL` call keeps
    it): no other thread of the process runs Python meanwhile. A signal cuts one sleep short (SIGUSR1's stack dump
    is written from C, without the lock); the next one follows at once."""
    libc = ctypes.PyDLL(None)
    libc.usleep.argtypes = [ctypes.c_uint]
    end = time.monotonic() + seconds if seconds > 0 else float("inf")
    while (left := end - time.monotonic()) > 0:
        libc.usleep(int(min(left, 3600.0) * 1e6))


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
