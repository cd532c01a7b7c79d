"""The backend registry: backends are plug-ins found through the Python entry-point group
`vla_ros.backends` (as pytest and LeRobot find theirs), the bundled ones included.

A package adds a backend with no edit to vla_ros by declaring, in its own packaging metadata,

    [project.entry-points."vla_ros.backends"]
    my_policy = "my_package.vla_plugin:BACKEND"

where `BACKEND = BackendSpec(loader="my_package.backend:load", settings="my_package.settings:MySettings")`.
The strings are imported only when that backend is used, so one backend's heavy dependency never
breaks another, and the robot config can check a backend's settings keys without loading its model.
A leaf module: it imports nothing of vla_ros.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "vla_ros.backends"


class RegistryError(LookupError):
    """A backend name is not registered, or its registration is broken; the message says which and why."""


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend's pieces are, as "module:attribute".

    loader: `load(model_path, overrides, seed, robot=None) -> Backend`; settings: its settings class
    (a `backends.settings.SettingsBase` dataclass, importable without the model's dependencies).
    """

    loader: str
    settings: str


def registered() -> dict[str, object]:
    """Backend name -> entry point, from every installed distribution (read anew each call: cheap)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    return sorted(registered())


def bundled_backends() -> list[str]:
    """The backends vla_ros itself registers (not those of other installed packages)."""
    return sorted(
        n for n, ep in registered().items() if ep.dist and ep.dist.name.replace("-", "_").lower() == "vla_ros"
    )


def backend_spec(name: str) -> BackendSpec:
    """The BackendSpec registered as `name`, or, for a name "module:attribute", the one it names (a backend that
    is not registered: one under development, the pipeline benchmark's `vla_ros.backends.noop:BACKEND`);
    RegistryError naming the registered ones otherwise."""
    eps = registered()
    if ":" in name:
        where, load = name, lambda: resolve(name)
    elif name in eps:
        where, load = f"entry point {eps[name].value}", eps[name].load
    else:
        hint = "" if eps else f" (no backend is registered under '{ENTRY_POINT_GROUP}': is vla_ros installed?)"
        raise RegistryError(f"unknown backend '{name}' (available: {sorted(eps)}){hint}")
    try:
        spec = load()
    except Exception as exc:  # noqa: BLE001 - a plug-in's import error, reported with where it is
        raise RegistryError(f"backend '{name}': cannot load {where}: {exc}") from exc
    if not isinstance(spec, BackendSpec):
        raise RegistryError(f"backend '{name}': {where} is not a BackendSpec, got {spec!r}")
    return spec


def resolve(target: str):
    """The object named "module:attribute"."""
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def settings_class(name: str):
    """The settings class of backend `name` (its fields are the keys a robot config may set)."""
    return resolve(backend_spec(name).settings)


def backend_loader(name: str):
    return resolve(backend_spec(name).loader)
