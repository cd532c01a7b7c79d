"""Robot configuration: schema, loading and validation (`config/robots/<robot>.yaml`).

Every error names the file, the key and the problem, e.g.
`config/robots/ur5e.yaml: joint_limits.elbow_joint.max_velocity: must be > 0, got -1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vla_ros.core.types import JointLimits

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration file is invalid; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class CameraConfig:
    name: str  # the name backends use (e.g. "front", "wrist")
    topic: str  # the image topic; a topic ending in /compressed is a sensor_msgs/CompressedImage


@dataclass(frozen=True)
class RobotConfig:
    """One robot: its joints, limits, cameras, topic names and default policy/executor settings."""

    name: str
    source: str  # file it was loaded from
    joint_names: tuple[str, ...]
    limits: JointLimits
    cameras: tuple[CameraConfig, ...]
    topics: dict[str, str]  # our topic name -> the robot's (remaps)
    policy: dict[str, Any] = field(default_factory=dict)  # policy_node parameter overrides
    executor: dict[str, Any] = field(default_factory=dict)  # chunk_executor parameter overrides
    use_sim: bool = False
    urdf: str = ""  # URDF path as written in the config ("" = none)
    workspace: WorkspaceConfig | None = None


@dataclass(frozen=True)
class WorkspaceConfig:
    """The `link` must stay in the box [min, max] and out of the keep_out boxes (metres, URDF base frame)."""

    link: str
    min: tuple[float, float, float]
    max: tuple[float, float, float]
    keep_out: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()


REMAPPABLE_TOPICS = ("joint_states", "commands", "action_chunk", "instruction")
_LIMIT_KEYS = ("min_position", "max_position", "max_velocity", "max_acceleration", "max_jerk")


def robot_config_path(robot: str, config_dir: Path | None = None) -> Path:
    """`config/robots/<robot>.yaml` in the source tree or the installed share directory."""
    base = config_dir if config_dir is not None else default_config_dir()
    return base / "robots" / f"{robot}.yaml"


def default_config_dir() -> Path:
    """The package's `config/` folder: source checkout first, then the ament share directory."""
    source = PACKAGE_ROOT / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vla_ros")) / "config"
    except Exception as exc:  # noqa: BLE001 - report where we looked
        raise ConfigError(f"cannot find the vla_ros config folder (looked in {source}): {exc}") from exc


def resolve_package_path(path: str) -> Path:
    """A path as written in config: absolute, or relative to the package root / share dir."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return default_config_dir().parent / p


def load_robot_config(robot_or_path: str) -> RobotConfig:
    """Load and validate a robot config by name (`sim`) or path (`/x/my_robot.yaml`)."""
    path = Path(robot_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = robot_config_path(robot_or_path)
    if not path.is_file():
        available = sorted(p.stem for p in robot_config_path("x").parent.glob("*.yaml"))
        raise ConfigError(f"{path}: robot config not found (available robots: {available})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_robot_config(raw, str(path))


def parse_robot_config(raw: Any, source: str) -> RobotConfig:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {problem}")

    if not isinstance(raw, dict):
        raise fail("(top level)", "must be a mapping")
    known = {"name", "joints", "joint_limits", "cameras", "topics", "policy", "executor", "use_sim", "description", "urdf", "workspace"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {sorted(known)})")
    for key in ("name", "joints", "joint_limits", "cameras"):
        if key not in raw:
            raise fail(key, "missing")
    joints = raw["joints"]
    if not (isinstance(joints, list) and joints and all(isinstance(j, str) and j for j in joints)):
        raise fail("joints", "must be a non-empty list of joint names")
    if len(set(joints)) != len(joints):
        raise fail("joints", f"duplicate joint names in {joints}")

    urdf = raw.get("urdf") or ""
    if not isinstance(urdf, str):
        raise fail("urdf", f"must be a path, got {urdf!r}")
    limits = _parse_limits(raw["joint_limits"], tuple(joints), urdf, fail)
    workspace = _parse_workspace(raw.get("workspace"), urdf, fail)

    cams = raw["cameras"]
    if not isinstance(cams, dict) or not cams:
        raise fail("cameras", "must map camera name -> {topic: ...}")
    cameras = []
    for name, entry in cams.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
            raise fail(f"cameras.{name}.topic", "missing or not a string")
        cameras.append(CameraConfig(str(name), entry["topic"]))

    topics = raw.get("topics", {}) or {}
    if not isinstance(topics, dict):
        raise fail("topics", "must map topic -> remapped name")
    for t, v in topics.items():
        if t not in REMAPPABLE_TOPICS:
            raise fail(f"topics.{t}", f"unknown topic (remappable: {list(REMAPPABLE_TOPICS)})")
        if not isinstance(v, str) or not v:
            raise fail(f"topics.{t}", f"must be a topic name, got {v!r}")
    for key in ("policy", "executor"):
        if not isinstance(raw.get(key, {}) or {}, dict):
            raise fail(key, "must be a mapping of node parameters")
    return RobotConfig(
        name=str(raw["name"]),
        source=source,
        joint_names=tuple(joints),
        limits=limits,
        cameras=tuple(cameras),
        topics=dict(topics),
        policy=dict(raw.get("policy") or {}),
        executor=dict(raw.get("executor") or {}),
        use_sim=bool(raw.get("use_sim", False)),
        urdf=urdf,
        workspace=workspace,
    )


def _parse_limits(limits_raw: Any, joints: tuple[str, ...], urdf: str, fail) -> JointLimits:
    """Per-joint limits: the URDF's (if any), overridden key by key by `joint_limits`."""
    if not isinstance(limits_raw, dict):
        raise fail("joint_limits", "must map joint name -> limits")
    for j in limits_raw:
        if j not in joints:
            raise fail(f"joint_limits.{j}", f"not one of the joints {list(joints)}")
    base: dict[str, np.ndarray] = {}
    if urdf:
        from vla_ros.core.kinematics import KinematicsError, UrdfKinematics

        try:
            urdf_limits = UrdfKinematics(resolve_package_path(urdf), joints).joint_limits()
        except KinematicsError as exc:
            raise fail("urdf", str(exc)) from exc
        base = {k: getattr(urdf_limits, k) for k in _LIMIT_KEYS}
    values: dict[str, list[float]] = {k: [] for k in _LIMIT_KEYS}
    for i, j in enumerate(joints):
        entry = limits_raw.get(j, {} if urdf else None)
        if not isinstance(entry, dict):
            raise fail(f"joint_limits.{j}", "missing (every joint needs min_position, max_position, max_velocity, or a urdf giving them)")
        unknown = sorted(set(entry) - set(_LIMIT_KEYS))
        if unknown:
            raise fail(f"joint_limits.{j}.{unknown[0]}", f"unknown limit (known: {list(_LIMIT_KEYS)})")
        for k in _LIMIT_KEYS:
            default = float(base[k][i]) if base else (math.inf if k in ("max_acceleration", "max_jerk") else None)
            v = entry.get(k, default)
            if v is None:
                raise fail(f"joint_limits.{j}.{k}", "missing")
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                raise fail(f"joint_limits.{j}.{k}", f"must be a number, got {v!r}")
            if k.startswith("max_") and k != "max_position" and v <= 0:
                raise fail(f"joint_limits.{j}.{k}", f"must be > 0, got {v}")
            values[k].append(float(v))
        if values["min_position"][-1] >= values["max_position"][-1]:
            raise fail(f"joint_limits.{j}", f"min_position {values['min_position'][-1]} must be below max_position {values['max_position'][-1]}")
    return JointLimits(joints, *(np.array(values[k]) for k in _LIMIT_KEYS))


def _parse_workspace(raw: Any, urdf: str, fail) -> WorkspaceConfig | None:
    if raw is None:
        return None
    if not urdf:
        raise fail("workspace", "needs a urdf (forward kinematics of the workspace link)")
    if not isinstance(raw, dict) or not isinstance(raw.get("link"), str):
        raise fail("workspace.link", "missing: the link whose position is checked")

    def point(key: str, value: Any) -> tuple[float, float, float]:
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            raise fail(key, f"must be [x, y, z] in metres, got {value!r}")
        return tuple(float(x) for x in value)

    def box(key: str, entry: Any):
        if not isinstance(entry, dict):
            raise fail(key, "must be {min: [x, y, z], max: [x, y, z]}")
        lower, upper = point(f"{key}.min", entry.get("min")), point(f"{key}.max", entry.get("max"))
        if any(a >= b for a, b in zip(lower, upper)):
            raise fail(key, f"min {list(lower)} must be below max {list(upper)} on every axis")
        return lower, upper

    lower, upper = box("workspace", {"min": raw.get("min"), "max": raw.get("max")})
    keep_out = raw.get("keep_out") or []
    if not isinstance(keep_out, list):
        raise fail("workspace.keep_out", "must be a list of boxes")
    return WorkspaceConfig(raw["link"], lower, upper, tuple(box(f"workspace.keep_out[{i}]", b) for i, b in enumerate(keep_out)))
