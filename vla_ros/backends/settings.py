"""Backend settings from layered sources, one precedence rule for every backend.

Highest first:
  1. node parameters: the launch argument / `ros2 param set`, over the robot config's `policy:`
     block (both reach the policy node as its `device` and `backend_settings` parameters)
  2. the checkpoint folder's own settings file, `<model_path>/<backend>.yaml`
  3. the package's `config/backends/<backend>.yaml`
  4. the settings class's defaults

Each backend declares its settings as a frozen dataclass (`SettingsBase`): its type annotations are the
schema (validated by pydantic, strict types, unknown keys refused, a key of the former vocabulary refused
with the new name), its `__post_init__` checks values, and `KEY_GROUPS`: keys that only make sense together
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

from vla_ros.paths import default_config_dir


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


def parse_overrides(
    text: str, where: str = "parameter backend_settings", example: str = "{steps: 5, dtype: bfloat16}"
) -> dict[str, Any]:
    """A parameter holding a YAML/JSON mapping as text ('' = none), e.g. `backend_settings`; SettingsError naming
    `where` and showing `example` if it is not one."""
    if not text.strip():
        return {}
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where}: not a YAML mapping ({exc})") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: must be a mapping such as '{example}', got {text!r}")
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
        check_renamed(values, source)
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


# Keys renamed when every backend moved to one vocabulary: old key -> what to write instead.
RENAMED_KEYS = {
    "delta_joints": "relative_joints",
    "camera": "cameras (model camera -> robot camera, e.g. {primary: front})",
    "wrist_cameras": "cameras (model camera -> robot camera, in the model's order)",
}


def check_renamed(values: Mapping[str, Any], source: str) -> None:
    """SettingsError naming the new key for a key of the former vocabulary."""
    old = [k for k in values if k in RENAMED_KEYS]
    if old:
        raise SettingsError(f"{source}: {old[0]}: renamed; write {RENAMED_KEYS[old[0]]}")


def _schema(settings_cls):
    """The pydantic model of a settings dataclass (strict types, no unknown keys), built once per class."""
    cached = settings_cls.__dict__.get("_pydantic_schema")
    if cached is not None:
        return cached
    import dataclasses
    import typing

    import pydantic

    hints = typing.get_type_hints(settings_cls)
    fields = {}
    for f in dataclasses.fields(settings_cls):
        if not f.init or f.name == "source":
            continue
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], pydantic.Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hints[f.name], ...)
    config = pydantic.ConfigDict(strict=True, extra="forbid")
    schema = pydantic.create_model(settings_cls.__name__, __config__=config, **fields)
    type.__setattr__(settings_cls, "_pydantic_schema", schema)
    return schema


def _tuples(value: Any) -> Any:
    """YAML lists as tuples at any depth (the settings' sequence type)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _as_typed(settings_cls, raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` with lists as tuples in the fields typed with tuples (free-form mappings stay as written)."""
    schema = _schema(settings_cls).model_fields
    return {k: _tuples(v) if k in schema and "tuple" in str(schema[k].annotation) else v for k, v in raw.items()}


def _validation_problem(exc, sources: Mapping[str, str], where: str) -> str:
    """The first pydantic error as `source: key: problem, got value`."""
    err = exc.errors()[0]
    key = str(err["loc"][0]) if err["loc"] else "(settings)"
    inner = ".".join(str(p) for p in err["loc"][1:])
    what = f"{key}.{inner}" if inner else key
    return f"{sources.get(key, where)}: {what}: {err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


def _value_problem(settings_cls, key: str, value: Any) -> str | None:
    """Why `value` does not fit field `key` of `settings_cls` (None if it does)."""
    import pydantic

    field_info = _schema(settings_cls).model_fields[key]
    adapter = pydantic.TypeAdapter(field_info.annotation, config=pydantic.ConfigDict(strict=True))
    try:
        adapter.validate_python(_as_typed(settings_cls, {key: value})[key])
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        inner = ".".join(str(p) for p in err["loc"])
        return f"{inner + ': ' if inner else ''}{err['msg'][0].lower()}{err['msg'][1:]}"
    return None


def check_joints(where: str, joints: tuple[str, ...], relative: tuple[str, ...], relative_key: str) -> None:
    """ValueError unless `joints` are distinct names (at least one) and every `relative` joint (the
    settings key `relative_key`) is one of them."""
    if not joints or len(set(joints)) != len(joints):
        raise ValueError(f"{where}: joints: need a non-empty list of distinct names, got {list(joints)}")
    stray = [j for j in relative if j not in joints]
    if stray:
        raise ValueError(f"{where}: {relative_key}: {stray} are not in joints {list(joints)}")


OVERLAP_ENDS = ("plan", "chunk")  # guided inference: where RTC's soft mask reaches 0 (blocks/rtc.prefix_on_grid)
DTYPES = ("float32", "bfloat16")  # the model dtypes a backend's `dtype` setting may name


def post_init_flow_settings(settings) -> None:
    """What every flow-matching backend's settings (π₀, SmolVLA) do first in `__post_init__`: joints and relative
    joints made tuples, then the checks they share, ValueError naming the key: joints and relative joints, a
    non-empty camera map, dt_s > 0, steps >= 1, max_guidance >= 0, guidance_overlap, dtype."""
    object.__setattr__(settings, "joints", tuple(settings.joints))
    object.__setattr__(settings, "relative_joints", tuple(settings.relative_joints))
    where = settings.source
    if settings.joints:
        check_joints(where, settings.joints, settings.relative_joints, "relative_joints")
    if settings.cameras is not None and not settings.cameras:
        raise ValueError(f"{where}: cameras: map at least one model camera to a robot camera")
    if not settings.dt_s > 0:
        raise ValueError(f"{where}: dt_s: must be > 0, got {settings.dt_s}")
    if settings.steps is not None and settings.steps < 1:
        raise ValueError(f"{where}: steps: must be >= 1, got {settings.steps}")
    if settings.max_guidance < 0:
        raise ValueError(f"{where}: max_guidance: must be >= 0, got {settings.max_guidance}")
    check_choice(where, "guidance_overlap", settings.guidance_overlap, OVERLAP_ENDS)
    check_choice(where, "dtype", settings.dtype, DTYPES)


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
        import pydantic

        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
        sources = sources or {}
        check_renamed(raw, ", ".join(sorted({sources.get(k, where) for k in raw if k in RENAMED_KEYS})) or where)
        known = cls.field_names()
        unknown = sorted(set(raw) - set(known))
        if unknown:
            origin = ", ".join(sorted({sources.get(k, where) for k in unknown}))
            raise SettingsError(f"{origin}: unknown keys {unknown} (known: {sorted(known)})")
        missing = [k for k in cls.required_keys() if k not in raw]
        if missing:
            raise SettingsError(f"{where}: missing keys {missing}")
        try:
            checked = _schema(cls).model_validate(_as_typed(cls, raw))
        except pydantic.ValidationError as exc:
            raise SettingsError(_validation_problem(exc, sources, where)) from None
        values = {key: getattr(checked, key) for key in raw}
        try:
            return cls(**values, source=where) if "source" in cls.__dataclass_fields__ else cls(**values)
        except TypeError as exc:  # a field the dataclass cannot take
            raise SettingsError(f"{where}: {exc}") from exc

    @classmethod
    def markdown(cls) -> str:
        """The settings as a markdown table: key, type (the schema's), default, meaning (the field's comment)."""
        import dataclasses
        import typing

        hints, docs = typing.get_type_hints(cls), _field_comments(cls)
        rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            if not f.init or f.name == "source":
                continue
            default = (
                "required"
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            )
            hint = hints[f.name]
            kind = (
                hint.__name__
                if isinstance(hint, type)
                else str(hint).replace("typing.", "").replace("NoneType", "None")
            )
            value = default if default == "required" else f"`{default!r}`"
            kind, doc = kind.replace("|", "or"), docs.get(f.name, "").replace("|", "/")
            rows.append(f"| `{f.name}` | {kind} | {value} | {doc} |")
        return "\n".join(rows)

    @classmethod
    def value_problem(cls, key: str, value: Any) -> str | None:
        """Why `value` does not fit setting `key` (its type in the schema), or None."""
        return _value_problem(cls, key, value)

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


def _field_comments(cls) -> dict[str, str]:
    """Field name -> its comments in the class source (the settings' docs): the comment lines just above the
    field, then the one after it on its line, continued by the comment lines right below that line."""
    import inspect
    import re

    comments: dict[str, str] = {}
    above: list[str] = []
    continued = None  # the field whose comment the comment lines right below continue
    for line in inspect.getsource(cls).splitlines():
        comment_line = re.match(r"^    #\s*(.*)$", line)
        field_line = re.match(r"^    (\w+): [^#]*?(?:#\s*(.*))?$", line)
        if comment_line and continued:
            comments[continued] += " " + comment_line.group(1)
        elif comment_line:
            above.append(comment_line.group(1))
        elif field_line and not line.strip().startswith(("def ", "@", "KEY_GROUPS", "_")):
            name, trailing = field_line.groups()
            comments[name] = " ".join([*above, trailing or ""]).strip()
            above, continued = [], name if trailing else None
        else:
            above, continued = [], None
    return comments


def _plain(value: Any) -> Any:
    """`value` with tuples as lists, at any depth (what yaml.safe_dump writes)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def with_robot_joints(settings, sources: dict[str, str], robot, who: str):
    """(settings, sources) with `joints` taken from the robot config when the settings name none.

    The robot config owns the robot's joints; a backend's settings name joints only to pick or reorder
    them for a checkpoint. SettingsError when neither names any.
    """
    import dataclasses

    if settings.joints:
        return settings, sources
    if robot is None or not robot.joint_names:
        raise SettingsError(f"{who}: joints: none set ({settings.source}) and no robot config to take them from")
    settings = dataclasses.replace(settings, joints=tuple(robot.joint_names))
    return settings, {**sources, "joints": f"{robot.source}: joints"}


def default_cameras(model_cameras: tuple[str, ...], robot_cameras: tuple[str, ...]) -> dict[str, str]:
    """Model camera -> robot camera when the settings map none: the robot camera of the same name where there
    is one, then the robot's other cameras in order onto the other model cameras ({} without robot cameras)."""
    same = {m: m for m in model_cameras if m in robot_cameras}
    rest = [c for c in robot_cameras if c not in same]
    others = dict(zip([m for m in model_cameras if m not in same], rest))
    return {m: same.get(m, others.get(m)) for m in model_cameras if m in same or m in others}
