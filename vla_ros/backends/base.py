"""The backend interface every policy implements, and the registry that picks one by name.

A backend turns an `Observation` into an `ActionChunk` (absolute joint targets, the robot
config's joint order). Backends are imported lazily, so one backend's heavy dependency never
breaks another: adding a backend means one folder and one line in `_BACKENDS`.
"""

from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.core.types import ActionChunk, Observation, PlanPrefix


class BackendError(RuntimeError):
    """A backend cannot be built or loaded; the message says what is wrong and where."""


class Backend(abc.ABC):
    """A policy: observation in, action chunk out."""

    #: camera names the backend reads from `Observation.images`
    camera_names: tuple[str, ...]
    #: joints of its state input and action output, in order
    joint_names: tuple[str, ...]
    #: seconds between chunk points
    dt_s: float
    #: points per chunk
    horizon: int

    #: whether `predict` can condition on the running plan (`prefix`, guided blending)
    supports_prefix: bool = False
    #: the effective settings (a backend's settings dataclass) and where each value came from
    settings: Any = None
    settings_sources: dict[str, str] = {}
    #: where values read from the checkpoint's own files came from (key -> file and field), if recorded
    provenance: dict[str, str] = {}

    @abc.abstractmethod
    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        """One chunk for `observation` (t0 = its stamp).

        noise: fixes the sampler's start (shape of the model's action tensor).
        prefix: the executor's plan ahead; backends with `supports_prefix` make the chunk continue
        it (Real-Time Chunking), others ignore it.
        """

    def reset(self) -> None:
        """Forget episode state (history windows, previous chunks)."""

    def diagnostics(self) -> dict[str, str]:
        """Extra key/values for the policy node's /diagnostics (e.g. a remote link's state and timing)."""
        return {}

    def close(self) -> None:
        """Release the model and its (GPU) memory; the backend cannot predict afterwards."""
        import gc
        import sys

        self.__dict__.pop("model", None)
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


# name -> ("module:loader", "module:SettingsClass"). The loader builds the backend from
# (model_path, overrides, seed); the settings class (importable without torch) validates the
# robot config's backend keys at load time.
_BACKENDS = {
    "octo": ("vla_ros.backends.octo.backend:load_octo_backend", "vla_ros.backends.octo.configuration:OctoSettings"),
    # a test and diagnostic tool: wraps another backend and injects faults (backends/fault_injection)
    "fault_injection": (
        "vla_ros.backends.fault_injection.backend:load_fault_injection_backend",
        "vla_ros.backends.fault_injection.configuration:FaultInjectionSettings",
    ),
    "openvla": (
        "vla_ros.backends.openvla.backend:load_openvla_backend",
        "vla_ros.backends.openvla.configuration:OpenVLASettings",
    ),
    "pi0": ("vla_ros.backends.pi0.backend:load_pi0_backend", "vla_ros.backends.pi0.settings:Pi0Settings"),
    "openpi_remote": (
        "vla_ros.backends.openpi_remote.backend:load_openpi_remote_backend",
        "vla_ros.backends.openpi_remote.configuration:RemoteSettings",
    ),
}


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def _resolve(name: str, which: int):
    if name not in _BACKENDS:
        raise BackendError(f"unknown backend '{name}' (available: {available_backends()})")
    module_name, attr = _BACKENDS[name][which].split(":")
    return getattr(importlib.import_module(module_name), attr)


def settings_class(name: str):
    """The settings dataclass of backend `name` (its fields are the keys a robot config may set)."""
    return _resolve(name, 1)


def load_backend(
    name: str,
    model_path: str | Path | None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    num_threads: int = 0,
) -> Backend:
    """Build backend `name` from the checkpoint folder `model_path`.

    overrides: settings from node parameters (highest precedence, see backends/settings.py).
    seed: sampler seed; num_threads: torch CPU threads (0 = torch's default).
    The backend's `settings` and `settings_sources` (key -> where its value came from) are set.
    """
    loader = _resolve(name, 0)
    if num_threads > 0:
        import torch

        torch.set_num_threads(num_threads)
    from vla_ros.backends.settings import SettingsError

    try:
        return loader(Path(model_path) if model_path else None, dict(overrides or {}), seed)
    except SettingsError as exc:
        raise BackendError(str(exc)) from exc
