"""Backend settings from layered sources, one precedence rule for every backend.

Highest first:
  1. node parameters: the launch argument / `ros2 param set`, over the robot config's `policy:`
     block (both reach the policy node as its `device` and `backend_settings` parameters)
  2. the checkpoint folder's own settings file, `<model_path>/<backend>.yaml`
  3. the package's `config/backends/<backend>.yaml`
  4. the settings class's defaults

Each backend declares its settings as a frozen dataclass with a `from_dict(raw, where, sources)`
constructor that validates types and values, and `KEY_GROUPS`: keys that only make sense together
(a robot mapping's `joints` and its relative joints), so a layer that sets one of them replaces the
whole group rather than mixing with a lower layer's; `resolve_settings` merges the layers key by key and
remembers where every value came from, so the node can log the effective settings and an error
names the file (or parameter) and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vla_ros.config import default_config_dir


class SettingsError(ValueError):
    """Backend settings are invalid; the message names the source, the key and the value."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """A settings YAML as a dict ({} for an empty file); SettingsError naming the file otherwise."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: cannot read backend settings ({exc})") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: backend settings must be a mapping, got {type(raw).__name__}")
    return raw


def parse_overrides(text: str, where: str = "parameter backend_settings") -> dict[str, Any]:
    """The `backend_settings` parameter: a YAML/JSON mapping as text ('' = none)."""
    if not text.strip():
        return {}
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where}: not a YAML mapping ({exc})") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: must be a mapping such as '{{steps: 5, dtype: bfloat16}}', got {text!r}")
    return raw


def settings_layers(
    backend: str,
    model_path: Path | None,
    overrides: Mapping[str, Any],
    overrides_source: str = "node parameters",
    settings_file: Path | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The layers that exist, lowest precedence first: (source, values).

    settings_file: a settings file to use in place of the checkpoint folder's `<backend>.yaml`.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    package_file = default_config_dir() / "backends" / f"{backend}.yaml"
    if package_file.is_file():
        layers.append((str(package_file), read_settings_file(package_file)))
    if settings_file is None and model_path is not None:
        settings_file = Path(model_path) / f"{backend}.yaml"
    if settings_file is not None and Path(settings_file).is_file():
        layers.append((str(settings_file), read_settings_file(Path(settings_file))))
    elif settings_file is not None and model_path is None:
        raise SettingsError(f"{settings_file}: backend settings file not found")
    if overrides:
        layers.append((overrides_source, dict(overrides)))
    return layers


def resolve_settings(settings_cls, layers: list[tuple[str, Mapping[str, Any]]], base: Mapping[str, Any] | None = None):
    """Merge `layers` (lowest precedence first) over `base` into `settings_cls`.

    Returns (settings, sources): sources maps each key to the layer it came from ('default' for
    the class defaults, 'checkpoint' for `base`). Unknown keys are reported with their layer.
    """
    known = settings_cls.field_names()
    merged: dict[str, Any] = dict(base or {})
    sources = {key: "checkpoint" for key in merged}
    for source, values in layers:
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"{source}: unknown {settings_cls.__name__} keys {unknown} (known: {sorted(known)})")
        for group in getattr(settings_cls, "KEY_GROUPS", ()):  # a layer that sets one key of a group sets the group
            if any(k in values for k in group):
                for k in group:
                    if k not in values:
                        merged.pop(k, None)
                        sources.pop(k, None)
        for key, value in values.items():
            merged[key] = value
            sources[key] = source
    where = " < ".join(["defaults", *(["checkpoint"] if base else []), *(s for s, _ in layers)])
    try:
        settings = settings_cls.from_dict(merged, where, sources)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    return settings, {key: sources.get(key, "default") for key in known}


def describe(settings, sources: Mapping[str, str]) -> str:
    """One log line: every effective setting with its source."""
    parts = []
    for key in settings.field_names():
        value = getattr(settings, key)
        parts.append(f"{key}={value!r} ({sources.get(key, 'default')})")
    return ", ".join(parts)


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why `value` does not fit the annotation `hint` (None if it does)."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, a) for a in args]
        if any(p is None for p in problems):
            return None
        return " or ".join(p.removeprefix("must be ") for p in problems).join(("must be ", ""))
    if hint is type(None):
        return None if value is None else "must be null"
    if hint is Any:
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"
    if hint is str:
        return None if isinstance(value, str) else "must be a string"
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return "must be a list"
        item = args[0] if args else Any
        bad = [v for v in value if _type_problem(v, item) is not None]
        return None if not bad else f"has invalid items {bad}"
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            return "must be a mapping"
        if args:
            bad = [k for k, v in value.items() if _type_problem(k, args[0]) or _type_problem(v, args[1])]
            return None if not bad else f"has invalid entries for {bad}"
        return None
    return None


def type_problem(settings_cls, key: str, value: Any) -> str | None:
    """Why `value` does not fit field `key` of `settings_cls` (None if it does)."""
    import typing

    return _type_problem(value, typing.get_type_hints(settings_cls)[key])


def check_joints(where: str, joints: tuple[str, ...], relative: tuple[str, ...], relative_key: str) -> None:
    """ValueError unless `joints` are distinct names (at least one) and every `relative` joint (the
    settings key `relative_key`) is one of them."""
    if not joints or len(set(joints)) != len(joints):
        raise ValueError(f"{where}: joints: need a non-empty list of distinct names, got {list(joints)}")
    stray = [j for j in relative if j not in joints]
    if stray:
        raise ValueError(f"{where}: {relative_key}: {stray} are not in joints {list(joints)}")


OVERLAP_ENDS = ("plan", "chunk")  # guided inference: where RTC's soft mask reaches 0 (blocks/rtc.prefix_on_grid)


def check_choice(where: str, key: str, value: Any, choices: tuple) -> None:
    """ValueError naming `key` and `value` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{where}: {key}: must be one of {list(choices)}, got {value!r}")


class SettingsBase:
    """Mixin for frozen settings dataclasses: typed `from_dict` with errors naming source, key, value.

    Fields without a default are required keys; a `source` field, if declared, receives `where`.
    """

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        import dataclasses

        return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name != "source")

    @classmethod
    def required_keys(cls) -> tuple[str, ...]:
        """The fields without a default, in declaration order."""
        import dataclasses

        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.init
            and f.name != "source"
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str, sources: Mapping[str, str] | None = None):
        """Settings from `raw`; SettingsError naming the source, key and value of the first problem.

        `where` names the whole of `raw` (a file, or the layers merged); `sources` the layer of each key.
        """
        import typing

        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
        sources = sources or {}
        hints = typing.get_type_hints(cls)
        known = cls.field_names()
        unknown = sorted(set(raw) - set(known))
        if unknown:
            origin = ", ".join(sorted({sources.get(k, where) for k in unknown}))
            raise SettingsError(f"{origin}: unknown keys {unknown} (known: {sorted(known)})")
        missing = [k for k in cls.required_keys() if k not in raw]
        if missing:
            raise SettingsError(f"{where}: missing keys {missing}")
        values = {}
        for key, value in raw.items():
            problem = _type_problem(value, hints[key])
            if problem:
                raise SettingsError(f"{sources.get(key, where)}: {key}: {problem}, got {value!r}")
            values[key] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**values, source=where) if "source" in hints else cls(**values)
        except TypeError as exc:  # a field the dataclass cannot take
            raise SettingsError(f"{where}: {exc}") from exc

    @classmethod
    def load(cls, path: Path):
        """Settings from one YAML file; SettingsError naming the file (and the key) otherwise."""
        path = Path(path)
        if not path.is_file():
            raise SettingsError(f"{path}: settings file not found ({cls.__name__})")
        return cls.from_dict(read_settings_file(path), str(path))

    def to_yaml(self) -> str:
        """The settings as YAML that `load` reads back (tuples written as lists, `source` left out)."""
        out = {key: getattr(self, key) for key in self.field_names()}
        return yaml.safe_dump(_plain(out), sort_keys=False)


def _plain(value: Any) -> Any:
    """`value` with tuples as lists, at any depth (what yaml.safe_dump writes)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
