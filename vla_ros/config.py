"""Robot configuration: schema, loading and validation (`config/robots/<robot>.yaml`).

Every error names the file, the key and the problem, e.g.
`config/robots/ur5e.yaml: joint_limits.elbow_joint.max_velocity: must be > 0, got -1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml

from vla_ros.core.types import JointLimits
from vla_ros.params import EXECUTOR, POLICY
from vla_ros.paths import default_config_dir, resolve_package_path
from vla_ros.registry import RegistryError, settings_class


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


def robot_config_path(robot: str, config_dir: Path | None = None) -> Path:
    """`config/robots/<robot>.yaml` in the source tree or the installed share directory."""
    base = config_dir if config_dir is not None else default_config_dir()
    return base / "robots" / f"{robot}.yaml"


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


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)


Name = Annotated[str, pydantic.Field(min_length=1)]
Point = Annotated[
    list[Annotated[float, pydantic.Field(allow_inf_nan=False)]], pydantic.Field(min_length=3, max_length=3)
]


class _Camera(_Strict):
    topic: Name  # a topic ending in /compressed carries sensor_msgs/CompressedImage


class _Box(_Strict):
    min: Point  # metres, URDF base frame
    max: Point


class _Workspace(_Box):
    link: Name
    keep_out: list[_Box] = []


class _EndEffector(_Strict):
    link: Name
    base_link: str = ""
    gripper_joint: str = ""


class _CartesianOutput(_Strict):
    type: Literal["pose", "twist"]


class RobotFile(_Strict):
    """The schema of `config/robots/<robot>.yaml` (structure and types; `parse_robot_config` then checks what
    needs the URDF and the node parameter schemas)."""

    name: Name
    description: str = ""
    use_sim: bool = False
    joints: Annotated[list[Name], pydantic.Field(min_length=1)]
    joint_limits: dict[str, dict[str, Any]]  # joint -> {ros2_control limit name: value} (params.JOINT_LIMITS)
    cameras: Annotated[dict[str, _Camera], pydantic.Field(min_length=1)]
    topics: dict[Literal["joint_states", "commands", "action_chunk", "instruction"], Name] = {}
    urdf: str = ""
    workspace: _Workspace | None = None
    end_effector: _EndEffector | None = None
    action_space: dict[str, Any] | None = None
    cartesian_output: _CartesianOutput | None = None
    home: list[float] | None = None
    policy: dict[str, Any] = {}
    executor: dict[str, Any] = {}


def _schema_problem(exc: pydantic.ValidationError) -> tuple[str, str]:
    """(key, problem) of the first schema error, keys dotted as in the file (`cameras.front.topic`)."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if p != "[key]"]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"] if p != "[key]")
    key = key.removeprefix(".") or "(top level)"
    if err["type"] == "missing":
        return key, "missing"
    if err["type"] == "extra_forbidden":
        return key, f"unknown key (known: {sorted(RobotFile.model_fields)})"
    if err["type"] == "literal_error" and loc[:1] == ["topics"]:
        return key, f"unknown topic (remappable: {list(REMAPPABLE_TOPICS)})"
    return key, f"{err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


def parse_robot_config(raw: Any, source: str) -> RobotConfig:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {problem}")

    if not isinstance(raw, dict):
        raise fail("(top level)", "must be a mapping")
    try:
        doc = RobotFile.model_validate({k: v for k, v in raw.items() if v is not None})  # null: the default
    except pydantic.ValidationError as exc:
        raise fail(*_schema_problem(exc)) from None
    joints = tuple(doc.joints)
    if len(set(joints)) != len(joints):
        raise fail("joints", f"duplicate joint names in {list(joints)}")
    limits = _parse_limits(doc.joint_limits, joints, doc.urdf, fail)
    workspace = _parse_workspace(doc.workspace, doc.urdf, fail)
    end_effector = _parse_end_effector(doc.end_effector, doc.urdf, joints, fail)
    action_space = _parse_action_space(doc.action_space, source, fail)
    if doc.cartesian_output is not None and end_effector is None:
        raise fail("cartesian_output", "needs end_effector (the link whose pose is commanded)")
    home = _parse_home(doc.home, joints, limits, fail)
    policy, backend_settings = _parse_policy(dict(doc.policy), fail)
    executor = _parse_node_block(EXECUTOR, dict(doc.executor), "executor", fail)
    return RobotConfig(
        name=doc.name,
        source=source,
        joint_names=joints,
        limits=limits,
        cameras=tuple(CameraConfig(name, cam.topic) for name, cam in doc.cameras.items()),
        topics=dict(doc.topics),
        policy=policy,
        executor=executor,
        backend_settings=backend_settings,
        use_sim=doc.use_sim,
        urdf=doc.urdf,
        workspace=workspace,
        end_effector=end_effector,
        action_space=action_space,
        cartesian_output=CartesianOutputConfig(doc.cartesian_output.type) if doc.cartesian_output else None,
        home=home,
    )


def _parse_limits(limits_raw: Any, joints: tuple[str, ...], urdf: str, fail) -> JointLimits:
    """Per-joint limits: the URDF's (if any), overridden key by key by `joint_limits`."""
    from vla_ros.params import JOINT_LIMIT_KEYS, joint_limits_from_values

    for j, entry in limits_raw.items():
        if j not in joints:
            raise fail(f"joint_limits.{j}", f"not one of the joints {list(joints)}")
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


def _parse_workspace(raw: _Workspace | None, urdf: str, fail) -> WorkspaceConfig | None:
    if raw is None:
        return None
    if not urdf:
        raise fail("workspace", "needs a urdf (forward kinematics of the workspace link)")

    def box(key: str, entry: _Box):
        lower, upper = tuple(entry.min), tuple(entry.max)
        if any(a >= b for a, b in zip(lower, upper)):
            raise fail(key, f"min {list(lower)} must be below max {list(upper)} on every axis")
        return lower, upper

    lower, upper = box("workspace", raw)
    keep_out = tuple(box(f"workspace.keep_out[{i}]", b) for i, b in enumerate(raw.keep_out))
    return WorkspaceConfig(raw.link, lower, upper, keep_out)


def _resolved_urdf(urdf: str, fail) -> Path:
    try:
        return resolve_package_path(urdf)
    except FileNotFoundError as exc:
        raise fail("urdf", str(exc)) from exc


def _parse_end_effector(raw: _EndEffector | None, urdf: str, joints: tuple[str, ...], fail) -> EndEffectorConfig | None:
    """`end_effector: {link, base_link, gripper_joint}`; the links must be in the URDF, the joint a robot joint."""
    if raw is None:
        return None
    if not urdf:
        raise fail("end_effector", "needs a urdf (forward and inverse kinematics of the link)")
    if raw.gripper_joint and raw.gripper_joint not in joints:
        raise fail("end_effector.gripper_joint", f"{raw.gripper_joint!r} is not one of the joints {list(joints)}")
    from vla_ros.core.kinematics import KinematicsError, UrdfKinematics

    try:
        kinematics = UrdfKinematics(_resolved_urdf(urdf, fail), joints)
    except KinematicsError as exc:
        raise fail("urdf", str(exc)) from exc
    for key in ("link", "base_link"):
        link = getattr(raw, key)
        if link and not kinematics.model.existFrame(link):
            raise fail(f"end_effector.{key}", f"{link!r} is not a link of {kinematics.path}")
    return EndEffectorConfig(raw.link, raw.base_link, raw.gripper_joint)


def _parse_action_space(raw: Any, source: str, fail) -> dict[str, Any] | None:
    """`action_space:` (preset + overrides, or groups), checked by the core: an unknown preset or field
    names the key and the value. Returned as written: the checkpoint's own space may come first."""
    if raw is None:
        return None
    from vla_ros.core.action_space import ActionSpaceError, action_space_from_dict

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


def _parse_home(
    raw: list[float] | None, joints: tuple[str, ...], limits: JointLimits, fail
) -> tuple[float, ...] | None:
    """`home: [q0, q1, ...]`: one value per joint (radians / metres), inside the position limits."""
    if raw is None:
        return None
    if len(raw) != len(joints):
        raise fail("home", f"must list one number per joint {list(joints)}, got {raw!r}")
    outside = [j for j, x, lo, hi in zip(joints, raw, limits.min_position, limits.max_position) if not lo <= x <= hi]
    if outside:
        raise fail("home", f"joints {outside} are outside their position limits")
    return tuple(float(x) for x in raw)


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
    node_keys = {k: v for k, v in block.items() if POLICY.get(k) is not None}
    settings = {k: v for k, v in block.items() if k not in node_keys}
    params = _parse_node_block(POLICY, node_keys, "policy", fail)
    if settings:
        backend = params.get("backend", POLICY.get("backend").default)
        try:
            known = settings_class(backend).field_names()
        except RegistryError as exc:
            raise fail("policy.backend", str(exc)) from exc
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise fail(
                f"policy.{unknown[0]}",
                f"neither a policy_node parameter nor a '{backend}' backend setting (settings: {sorted(known)})",
            )
        for name, value in settings.items():
            problem = settings_class(backend).value_problem(name, value)
            if problem:
                raise fail(f"policy.{name}", f"{problem}, got {value!r}")
    return params, settings
