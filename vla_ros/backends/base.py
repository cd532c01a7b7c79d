"""The backend interface every policy implements, and `load_backend`, which builds one by name.

A backend turns an `Observation` into an `ActionChunk` (absolute joint targets, the robot
config's joint order). Backends are plug-ins found by name through the `vla_ros.backends`
entry points (vla_ros/registry.py), imported only when used.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros.registry import RegistryError, backend_loader


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
    #: the checkpoint's action space (an `action_space` block: preset and overrides, or groups); None =
    #: joint positions of `joint_names`, those in `relative_joints` relative to the state
    action_space: Any = None
    relative_joints: tuple[str, ...] = ()
    action_space_source: str = "checkpoint"  # where `action_space` was read (errors name it)
    #: model actions -> joint targets and joints -> the model's state (backends/action_output.py), set by bind_robot
    output: Any = None

    def bind_robot(self, robot=None) -> None:
        """Build `self.output` for this checkpoint on `robot` (a RobotBody; None = joint spaces only).

        Raises ActionSpaceError / KinematicsError (ValueError) naming the source and key. Backends whose
        model sizes depend on the robot (action and state dims) check them here.
        """
        from vla_ros.backends.action_output import build_action_output

        self.output = build_action_output(
            self.action_space, tuple(self.joint_names), tuple(self.relative_joints), robot, self.action_space_source
        )

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

    def new_episode_state(self, seed: int) -> dict[str, Any]:
        """A fresh episode state, as loading with `seed` leaves it (an empty history window, a new noise
        generator): attribute name -> value, {} for a backend that keeps none. A server serving several
        robots keeps one per connection and predicts within it (`episode_state`); the model is shared.
        A backend that keeps state between `predict` calls lists it here."""
        return {}

    @contextmanager
    def episode_state(self, state: dict[str, Any]) -> Iterator[None]:
        """Predict within `state` (from `new_episode_state`): its values replace the backend's attributes for
        the block, and what the block left in them (a history grown by one step) is written back to `state`.
        One thread at a time (the server's inference thread)."""
        previous = {name: getattr(self, name) for name in state}
        self.__dict__.update(state)
        try:
            yield
        finally:
            state.update({name: getattr(self, name) for name in state})
            self.__dict__.update(previous)

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


def require_cameras(observation: Observation, cameras: tuple[str, ...], who: str) -> None:
    """BackendError naming the `cameras` that `observation` lacks (`who`: the backend, for the message)."""
    missing = [c for c in cameras if c not in observation.images]
    if missing:
        raise BackendError(f"{who} needs cameras {list(cameras)}; observation lacks {missing}")


def backend_joints(
    names: tuple[str, ...], values: np.ndarray, wanted: tuple[str, ...], who: str, what: str = "observation"
) -> np.ndarray:
    """values (..., len(names)) -> float64 (..., len(wanted)) in `wanted` order (radians, as given).

    BackendError naming the joints `who` expects and those the `what` lacks.
    """
    from vla_ros.core.robot_mapping import JointNameError, select_joints

    try:
        return select_joints(names, np.asarray(values, dtype=np.float64), wanted, f"the {what}")
    except JointNameError as exc:
        raise BackendError(f"{who} expects joints {list(wanted)}; {exc}") from exc


def checkpoint_folder(model_path: str | Path | None, settings, who: str) -> Path:
    """`model_path`, else the settings' `checkpoint` (absolute or relative to the package root)."""
    if model_path is not None:
        return Path(model_path)
    if settings.checkpoint is None:
        raise BackendError(f"{who}: no checkpoint folder given (model_path) and {settings.source} sets no 'checkpoint'")
    from vla_ros.paths import resolve_package_path

    return Path(resolve_package_path(settings.checkpoint))


def load_backend(
    name: str,
    model_path: str | Path | None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    num_threads: int = 0,
    robot=None,
) -> Backend:
    """Build backend `name` from the checkpoint folder `model_path`, bound to `robot`.

    overrides: settings from node parameters (highest precedence, see backends/settings.py).
    seed: sampler seed; num_threads: torch CPU threads (0 = torch's default).
    robot: the RobotBody (URDF, end effector, the robot config's action_space block) the checkpoint's
    action space runs on (backends/action_output.py); None = joint spaces only.
    The backend's `settings` and `settings_sources` (key -> where its value came from) are set.
    """
    try:
        loader = backend_loader(name)
    except RegistryError as exc:
        raise BackendError(str(exc)) from exc
    if num_threads > 0:
        import torch

        torch.set_num_threads(num_threads)
    from vla_ros.backends.settings import SettingsError

    try:
        backend = loader(Path(model_path) if model_path else None, dict(overrides or {}), seed, robot=robot)
    except SettingsError as exc:
        raise BackendError(str(exc)) from exc
    try:
        backend.bind_robot(robot)
    except ValueError as exc:  # ActionSpaceError, KinematicsError: bad preset, link, joint
        backend.close()
        raise BackendError(f"{name} backend ({model_path}): {exc}") from exc
    return backend
