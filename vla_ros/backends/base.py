"""The backend interface every policy implements, and the registry that picks one by name.

A backend turns an `Observation` into an `ActionChunk` (absolute joint targets, the robot
config's joint order). Backends are imported lazily, so one backend's heavy dependency never
breaks another: adding a backend means one folder and one line in `_BACKENDS`.
"""

from __future__ import annotations

import abc
import importlib
from pathlib import Path

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


# name -> "module:function" building the backend from (model_path, options)
_BACKENDS = {
    "octo": "vla_ros.backends.octo.backend:load_octo_backend",
    "openvla": "vla_ros.backends.openvla.backend:load_openvla_backend",
    "pi0": "vla_ros.backends.pi0.backend:load_pi0_backend",
}


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def load_backend(name: str, model_path: str | Path, **options) -> Backend:
    """Build backend `name` from the checkpoint folder `model_path`."""
    if name not in _BACKENDS:
        raise BackendError(f"unknown backend '{name}' (available: {available_backends()})")
    module_name, func = _BACKENDS[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, func)(Path(model_path), **options)
