"""Robot configuration: schema, loading and validation (`config/robots/<robot>.yaml`).

Every error names the file, the key and the problem, e.g.
`config/robots/ur5e.yaml: joint_limits.elbow_joint.max_velocity: must be > 0, got -1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.core.types import JointLimits
from vla_ros.params import EXECUTOR, POLICY

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
    backend_settings: dict[str, Any] = field(default_factory=dict)  # the `policy:` keys that are backend settings
    use_sim: bool = False
    urdf: str = ""  # URDF path as written in the config ("" = none)
    workspace: WorkspaceConfig | None = None
    end_effector: EndEffectorConfig | None = None
    action_space: dict[str, Any] | None = None  # the `action_space:` block (validated; see backends/action_output.py)
    cartesian_output: CartesianOutputConfig | None = None
    home: tuple[float, ...] | None = None  # a safe, non-singular pose in joint order (preflight checks start there)


@dataclass(frozen=True)
class EndEffectorConfig:
    """The URDF link end-effector actions and states refer to, the base link whose frame they are in
    ("" = the URDF root) and the gripper joint gripper values drive ("" = none)."""

    link: str
    base_link: str = ""
    gripper_joint: str = ""


@dataclass(frozen=True)
class CartesianOutputConfig:
    """Commands as end-effector targets of `end_effector.link` in `base_link`'s frame: `pose`
    (geometry_msgs/PoseStamped) or `twist` (geometry_msgs/TwistStamped, MoveIt Servo)."""

    type: str


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


URDF_PACKAGE_PREFIX = "example-robot-data:"


def resolve_package_path(path: str) -> Path:
    """A path as written in config: absolute, relative to the package root / share dir, or
    `example-robot-data:<robots/ relative path>` (a URDF shipped by the example-robot-data wheel)."""
    if path.startswith(URDF_PACKAGE_PREFIX):
        from vla_ros.core.robot_descriptions import example_robot_data_urdf

        return example_robot_data_urdf(path[len(URDF_PACKAGE_PREFIX) :])
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return default_config_dir().parent / p


def resolve_model_path(path: str | Path) -> Path:
    """A checkpoint folder as a user names it: absolute; relative to the working directory where it exists
    there; else relative to the package (the bundled `models/demo`)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return resolve_package_path(str(p))


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
    known = {
        "name",
        "joints",
        "joint_limits",
        "cameras",
        "topics",
        "policy",
        "executor",
        "use_sim",
        "description",
        "urdf",
        "workspace",
        "end_effector",
        "action_space",
        "cartesian_output",
        "home",
    }
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
    end_effector = _parse_end_effector(raw.get("end_effector"), urdf, tuple(joints), fail)
    action_space = _parse_action_space(raw.get("action_space"), source, fail)
    cartesian_output = _parse_cartesian_output(raw.get("cartesian_output"), end_effector, fail)
    home = _parse_home(raw.get("home"), tuple(joints), limits, fail)

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
    policy, backend_settings = _parse_policy(dict(raw.get("policy") or {}), fail)
    executor = _parse_node_block(EXECUTOR, dict(raw.get("executor") or {}), "executor", fail)
    return RobotConfig(
        name=str(raw["name"]),
        source=source,
        joint_names=tuple(joints),
        limits=limits,
        cameras=tuple(cameras),
        topics=dict(topics),
        policy=policy,
        executor=executor,
        backend_settings=backend_settings,
        use_sim=bool(raw.get("use_sim", False)),
        urdf=urdf,
        workspace=workspace,
        end_effector=end_effector,
        action_space=action_space,
        cartesian_output=cartesian_output,
        home=home,
    )


def _parse_limits(limits_raw: Any, joints: tuple[str, ...], urdf: str, fail) -> JointLimits:
    """Per-joint limits: the URDF's (if any), overridden key by key by `joint_limits`."""
    from vla_ros.params import JOINT_LIMIT_KEYS, joint_limits_from_values

    if not isinstance(limits_raw, dict):
        raise fail("joint_limits", "must map joint name -> limits")
    for j, entry in limits_raw.items():
        if j not in joints:
            raise fail(f"joint_limits.{j}", f"not one of the joints {list(joints)}")
        if not isinstance(entry, dict):
            raise fail(f"joint_limits.{j}", f"must map limit name -> value, got {entry!r}")
        unknown = sorted(set(entry) - set(JOINT_LIMIT_KEYS))
        if unknown:
            raise fail(f"joint_limits.{j}.{unknown[0]}", f"unknown limit (known: {list(JOINT_LIMIT_KEYS)})")
    base: JointLimits | None = None
    if urdf:
        from vla_ros.core.kinematics import KinematicsError, UrdfKinematics

        try:
            base = UrdfKinematics(_resolved_urdf(urdf, fail), joints).joint_limits()
        except KinematicsError as exc:
            raise fail("urdf", str(exc)) from exc

    def value(joint: str, key: str):
        entry = limits_raw.get(joint, {})
        if key in entry:
            return entry[key]
        column = getattr(base, key) if base is not None else None
        return None if column is None else float(column[joints.index(joint)])

    try:
        return joint_limits_from_values(joints, value, "joint_limits")
    except ValueError as exc:
        raise fail(*str(exc).split(": ", 1)) from exc


def _parse_workspace(raw: Any, urdf: str, fail) -> WorkspaceConfig | None:
    if raw is None:
        return None
    if not urdf:
        raise fail("workspace", "needs a urdf (forward kinematics of the workspace link)")
    if not isinstance(raw, dict) or not isinstance(raw.get("link"), str):
        raise fail("workspace.link", "missing: the link whose position is checked")

    def point(key: str, value: Any) -> tuple[float, float, float]:
        if not (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        ):
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
    return WorkspaceConfig(
        raw["link"], lower, upper, tuple(box(f"workspace.keep_out[{i}]", b) for i, b in enumerate(keep_out))
    )


def _resolved_urdf(urdf: str, fail) -> Path:
    try:
        return resolve_package_path(urdf)
    except FileNotFoundError as exc:
        raise fail("urdf", str(exc)) from exc


def _parse_end_effector(raw: Any, urdf: str, joints: tuple[str, ...], fail) -> EndEffectorConfig | None:
    """`end_effector: {link, base_link, gripper_joint}`; the links must be in the URDF, the joint a robot joint."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail("end_effector", f"must be {{link: ..., base_link: ..., gripper_joint: ...}}, got {raw!r}")
    unknown = sorted(set(raw) - {"link", "base_link", "gripper_joint"})
    if unknown:
        raise fail(f"end_effector.{unknown[0]}", "unknown key (known: ['base_link', 'gripper_joint', 'link'])")
    for key in ("link", "base_link", "gripper_joint"):
        if not isinstance(raw.get(key, ""), str) or (key == "link" and not raw.get(key)):
            raise fail(
                f"end_effector.{key}",
                f"must be a {'joint' if key == 'gripper_joint' else 'URDF link'} name, got {raw.get(key)!r}",
            )
    if not urdf:
        raise fail("end_effector", "needs a urdf (forward and inverse kinematics of the link)")
    gripper = raw.get("gripper_joint", "")
    if gripper and gripper not in joints:
        raise fail("end_effector.gripper_joint", f"{gripper!r} is not one of the joints {list(joints)}")
    from vla_ros.core.kinematics import KinematicsError, UrdfKinematics

    try:
        kinematics = UrdfKinematics(_resolved_urdf(urdf, fail), joints)
    except KinematicsError as exc:
        raise fail("urdf", str(exc)) from exc
    for key in ("link", "base_link"):
        if raw.get(key) and not kinematics.model.existFrame(raw[key]):
            raise fail(f"end_effector.{key}", f"{raw[key]!r} is not a link of {kinematics.path}")
    return EndEffectorConfig(raw["link"], raw.get("base_link", ""), gripper)


def _parse_action_space(raw: Any, source: str, fail) -> dict[str, Any] | None:
    """`action_space:` (preset + overrides, or groups), checked by the core: an unknown preset or field
    names the key and the value. Returned as written: the checkpoint's own space may come first."""
    if raw is None:
        return None
    from vla_ros.core.action_space import ActionSpaceError, action_space_from_dict

    if not isinstance(raw, dict):
        raise fail("action_space", f"must be a mapping (preset and overrides), got {raw!r}")
    if "preset" in raw or "groups" in raw:
        try:
            action_space_from_dict(raw, source="action_space")
        except ActionSpaceError as exc:
            raise fail(*str(exc).split(": ", 1)) from exc
    else:  # overrides of the checkpoint's space: check them over a preset that has every group type
        problems = []
        for preset in ("libero_ee_delta", "droid_joint_velocity", "joint_absolute"):
            try:
                action_space_from_dict({"preset": preset, **raw}, source="action_space")
                break
            except ActionSpaceError as exc:
                problems.append(str(exc))
        else:
            raise fail(*problems[0].replace("action_space.preset.", "action_space.").split(": ", 1))
    return dict(raw)


def _parse_home(raw: Any, joints: tuple[str, ...], limits: JointLimits, fail) -> tuple[float, ...] | None:
    """`home: [q0, q1, ...]`: one value per joint (radians / metres), inside the position limits."""
    if raw is None:
        return None
    if not (
        isinstance(raw, list)
        and len(raw) == len(joints)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
    ):
        raise fail("home", f"must list one number per joint {list(joints)}, got {raw!r}")
    outside = [j for j, x, lo, hi in zip(joints, raw, limits.min_position, limits.max_position) if not lo <= x <= hi]
    if outside:
        raise fail("home", f"joints {outside} are outside their position limits")
    return tuple(float(x) for x in raw)


CARTESIAN_OUTPUTS = ("pose", "twist")


def _parse_cartesian_output(raw: Any, end_effector: EndEffectorConfig | None, fail) -> CartesianOutputConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"type"}:
        raise fail("cartesian_output", f"must be {{type: pose | twist}}, got {raw!r}")
    if raw.get("type") not in CARTESIAN_OUTPUTS:
        raise fail("cartesian_output.type", f"must be one of {list(CARTESIAN_OUTPUTS)}, got {raw.get('type')!r}")
    if end_effector is None:
        raise fail("cartesian_output", "needs end_effector (the link whose pose is commanded)")
    return CartesianOutputConfig(raw["type"])


_NODE_KEYS_SET_BY_BRINGUP = ("joint_names", "camera_names", "camera_topics")


def _parse_node_block(schema, block: dict[str, Any], key: str, fail) -> dict[str, Any]:
    """Validate a node parameter block against the node's schema."""
    for name in block:
        if name in _NODE_KEYS_SET_BY_BRINGUP:
            raise fail(f"{key}.{name}", "is set from the robot config's joints/cameras, not here")
    try:
        return schema.validate(block, key)
    except ValueError as exc:
        raise fail(*str(exc).split(": ", 1)) from exc


def _parse_policy(block: dict[str, Any], fail) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `policy:` into policy_node parameters and backend settings (the keys of the backend's
    settings class), validating both."""
    from vla_ros.backends.base import BackendError, settings_class
    from vla_ros.backends.settings import type_problem

    node_keys = {k: v for k, v in block.items() if POLICY.get(k) is not None}
    settings = {k: v for k, v in block.items() if k not in node_keys}
    params = _parse_node_block(POLICY, node_keys, "policy", fail)
    if settings:
        backend = params.get("backend", POLICY.get("backend").default)
        try:
            known = settings_class(backend).field_names()
        except BackendError as exc:
            raise fail("policy.backend", str(exc)) from exc
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise fail(
                f"policy.{unknown[0]}",
                f"neither a policy_node parameter nor a '{backend}' backend setting (settings: {sorted(known)})",
            )
        for name, value in settings.items():
            problem = type_problem(settings_class(backend), name, value)
            if problem:
                raise fail(f"policy.{name}", f"{problem}, got {value!r}")
    return params, settings
