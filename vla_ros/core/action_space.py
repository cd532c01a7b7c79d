"""Declarative action and state spaces of a checkpoint: what each number a model reads or writes means.

An ActionSpace is an ordered list of groups, each taking consecutive values of an action row:
- `joint_position` (mode absolute | relative to the state), `joint_velocity` (rad/s per unit `scale`,
  integrated at the chunk's dt from the plan's position), over `joints` (default: every joint not driven by a
  gripper group, in the robot's joint order);
- `ee_position` (3; mode delta | absolute; frame base | tool; metres per unit `scale`) and
  `ee_rotation` (mode, frame, `format` of vla_ros.core.rotations; `scale` in radians per unit
  for euler_xyz / axis_angle), driving the arm joints through IK;
- `gripper` (1): model values in `source_range` map linearly to joint positions in
  `target_range` (default: the joint's position limits; source low -> target low); `invert`
  flips the map; `binarize_threshold` (on the normalised value in [0, 1], before `invert`)
  snaps it to 0 or 1. `source_range: null` passes raw joint values. `joint` defaults to the robot's
  gripper joint;
- `ignore` (`size` values): not used on this robot (padding, a gripper commanded elsewhere).
Deltas are chained along a chunk by `chain`: `cumulative` (each step relative to the previous
step's target; the first relative to the plan at the chunk's first point) or `from_state`
(every step relative to the observed state).

A StateSpace lists the model's state input: `joint_position`, `ee_position` (base frame, by
forward kinematics), `ee_rotation` (`format`), `gripper` (the inverse of the action map;
`signs` repeats the value, e.g. (1, -1) for two mirrored fingers).

Both are built from a YAML-like dict (`action_space_from_dict`): a `preset` name and overrides.
Errors are ActionSpaceError naming the key and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from vla_ros.core.ik import IkSettings
from vla_ros.core.rotations import ROTATION_FORMATS

CHAINS = ("cumulative", "from_state")


class ActionSpaceError(ValueError):
    """An action or state space is invalid; the message names the key and the value."""


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ActionSpaceError(f"{key}: must be one of {list(allowed)}, got {value!r}")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ActionSpaceError(f"{key}: must be a finite number, got {value!r}")
    return float(value)


def _range(key: str, value: Any, allow_none: bool) -> tuple[float, float] | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ActionSpaceError(f"{key}: must be [low, high], got {value!r}")
    low, high = _number(key, value[0]), _number(key, value[1])
    if low == high:
        raise ActionSpaceError(f"{key}: low and high must differ, got {value!r}")
    return low, high


def _names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ActionSpaceError(f"{key}: must be a list of joint names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class JointPosition:
    """Joint positions (radians / metres), absolute or relative to the state (see `chain`)."""

    joints: tuple[str, ...] = ()
    mode: str = "absolute"
    type = "joint_position"

    def __post_init__(self):
        object.__setattr__(self, "joints", _names("joints", self.joints))
        _one_of("mode", self.mode, ("absolute", "relative"))


@dataclass(frozen=True)
class JointVelocity:
    """Joint velocities, integrated at the chunk's dt from the plan's position; rad/s (or m/s) = value * scale."""

    joints: tuple[str, ...] = ()
    scale: float = 1.0
    type = "joint_velocity"

    def __post_init__(self):
        object.__setattr__(self, "joints", _names("joints", self.joints))
        object.__setattr__(self, "scale", _number("scale", self.scale))


def _check_ee_part(part, what: str, **choices: tuple[str, ...]) -> None:
    """An end-effector position or rotation: mode delta or absolute, frame base or tool (absolute values are in
    the base frame), `choices` for other fields, scale a number (made a float)."""
    _one_of("mode", part.mode, ("delta", "absolute"))
    _one_of("frame", part.frame, ("base", "tool"))
    for key, allowed in choices.items():
        _one_of(key, getattr(part, key), allowed)
    if part.mode == "absolute" and part.frame != "base":
        raise ActionSpaceError(f"frame: an absolute {what} is in the base frame, got {part.frame!r}")
    object.__setattr__(part, "scale", _number("scale", part.scale))


@dataclass(frozen=True)
class EePosition:
    """End-effector position (3): delta or absolute, base or (deltas only) tool frame; metres = value * scale."""

    mode: str = "delta"
    frame: str = "base"
    scale: float = 1.0
    type = "ee_position"

    def __post_init__(self):
        _check_ee_part(self, "position")


@dataclass(frozen=True)
class EeRotation:
    """End-effector orientation: delta or absolute, base or (deltas only) tool frame, in `format`."""

    mode: str = "delta"
    frame: str = "base"
    format: str = "euler_xyz"
    scale: float = 1.0
    type = "ee_rotation"

    def __post_init__(self):
        _check_ee_part(self, "rotation", format=ROTATION_FORMATS)
        if self.scale != 1.0 and self.format not in ("euler_xyz", "axis_angle"):
            raise ActionSpaceError(
                f"scale: only euler_xyz and axis_angle values can be scaled, got {self.scale} for {self.format}"
            )


@dataclass(frozen=True)
class Gripper:
    """One gripper joint ("" = the robot's gripper joint), mapped linearly between model and joint units."""

    joint: str = ""
    source_range: tuple[float, float] | None = (0.0, 1.0)
    target_range: tuple[float, float] | None = None
    invert: bool = False
    binarize_threshold: float | None = None
    signs: tuple[float, ...] = (1.0,)  # state only: the value repeated with these signs
    type = "gripper"

    def __post_init__(self):
        if not isinstance(self.joint, str):
            raise ActionSpaceError(f"joint: must be a joint name, got {self.joint!r}")
        object.__setattr__(self, "source_range", _range("source_range", self.source_range, allow_none=True))
        object.__setattr__(self, "target_range", _range("target_range", self.target_range, allow_none=True))
        if not isinstance(self.invert, bool):
            raise ActionSpaceError(f"invert: must be true or false, got {self.invert!r}")
        if self.binarize_threshold is not None:
            threshold = _number("binarize_threshold", self.binarize_threshold)
            if not 0.0 < threshold < 1.0:
                raise ActionSpaceError(f"binarize_threshold: must be in (0, 1) (normalised value), got {threshold}")
            object.__setattr__(self, "binarize_threshold", threshold)
        if not isinstance(self.signs, (list, tuple)) or not self.signs:
            raise ActionSpaceError(f"signs: must be a non-empty list of numbers, got {self.signs!r}")
        object.__setattr__(self, "signs", tuple(_number("signs", s) for s in self.signs))

    @property
    def size(self) -> int:
        return len(self.signs)


@dataclass(frozen=True)
class Ignore:
    """Action values not used on this robot (padding, a gripper driven elsewhere)."""

    size: int = 1
    type = "ignore"

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ActionSpaceError(f"size: must be an integer >= 1, got {self.size!r}")


ACTION_GROUPS = {g.type: g for g in (JointPosition, JointVelocity, EePosition, EeRotation, Gripper, Ignore)}
STATE_GROUPS = {g.type: g for g in (JointPosition, EePosition, EeRotation, Gripper)}
Group = JointPosition | JointVelocity | EePosition | EeRotation | Gripper | Ignore


@dataclass(frozen=True)
class StateSpace:
    """The model's state input: groups of JointPosition, EePosition, EeRotation (format) and Gripper, in order."""

    groups: tuple[Group, ...] = ()

    def __post_init__(self):
        for i, group in enumerate(self.groups):
            if group.type not in STATE_GROUPS:
                raise ActionSpaceError(
                    f"state.groups[{i}].type: must be one of {list(STATE_GROUPS)}, got {group.type!r}"
                )
            if isinstance(group, (EePosition, EeRotation)) and (group.mode, group.frame, group.scale) != (
                "delta",
                "base",
                1.0,
            ):
                raise ActionSpaceError(
                    f"state.groups[{i}]: a state {group.type} is the measured pose in the base frame "
                    "(only `format` applies)"
                )
            if isinstance(group, Gripper) and group.binarize_threshold is not None:
                raise ActionSpaceError(f"state.groups[{i}].binarize_threshold: applies to actions only")
        _at_most_one_ee(self.groups, "state.groups")


@dataclass(frozen=True)
class ActionSpace:
    """A checkpoint's action convention (groups in action-row order, chaining), its state input, IK settings."""

    name: str
    groups: tuple[Group, ...]
    chain: str = "cumulative"
    state: StateSpace = field(default_factory=StateSpace)
    ik: IkSettings = field(default_factory=IkSettings)

    def __post_init__(self):
        _one_of("chain", self.chain, CHAINS)
        if not self.groups:
            raise ActionSpaceError("groups: an action space needs at least one group")
        for i, group in enumerate(self.groups):
            if group.type not in ACTION_GROUPS:
                raise ActionSpaceError(f"groups[{i}].type: must be one of {list(ACTION_GROUPS)}, got {group.type!r}")
            if isinstance(group, Gripper) and group.size != 1:
                raise ActionSpaceError(f"groups[{i}].signs: applies to state grippers only")
        _at_most_one_ee(self.groups, "groups")

    @property
    def uses_ee(self) -> bool:
        return any(isinstance(g, (EePosition, EeRotation)) for g in self.groups)


def _at_most_one_ee(groups, key: str) -> None:
    for kind in (EePosition, EeRotation):
        if sum(isinstance(g, kind) for g in groups) > 1:
            raise ActionSpaceError(f"{key}: at most one {kind.type} group, got {[g.type for g in groups]}")


def bridge_ee_delta() -> ActionSpace:
    """Octo / OpenVLA trained on Bridge (WidowX 250): 7 values, no proprioceptive state.

    EE translation delta xyz (m) and rotation delta roll/pitch/yaw (rad) in the base frame, gripper
    opening in [0, 1] (> 0.5 = open). Source: SimplerEnv `simpler_env/policies/octo/octo_model.py`
    and `policies/openvla/openvla_model.py`: roll/pitch/yaw go through transforms3d `euler2axangle`
    (static axes xyz, scipy "xyz"); the gripper is binarised at 0.5 to +1 open / -1 close. The
    actions drive ManiSkill2 real2sim's `arm_pd_ee_target_delta_pose_align2` controller at 5 Hz:
    each delta applies to the previous *target* (cumulative), translation along the base axes,
    rotation about base-aligned axes at the EE (left-multiplied).
    """
    groups = (EePosition("delta", "base"), EeRotation("delta", "base", "euler_xyz"), Gripper(binarize_threshold=0.5))
    return ActionSpace("bridge_ee_delta", groups, chain="cumulative")


def libero_ee_delta() -> ActionSpace:
    """OpenVLA / OpenVLA-OFT (and, with an override, pi0) on LIBERO (Franka Panda in robosuite).

    Actions: EE delta xyz and axis-angle delta in robosuite units ([-1, 1], OSC_POSE scales them by
    0.05 m and 0.5 rad), base frame, the goal set from the current pose each 20 Hz step
    (cumulative when tracked), rotation left-multiplied. Gripper: the OpenVLA models predict
    [0, 1] with 1 = open; `experiments/robot/robot_utils.py` maps it to [-1, 1], binarises by sign
    (threshold 0.5) and flips it to robosuite's -1 open / +1 close. State (OFT, pi0): EE position
    (3) + axis-angle from the EE quaternion (3) + the two finger positions (2). Source:
    moojink/openvla-oft `experiments/robot/libero/` and openpi `examples/libero/main.py`; pi0-LIBERO
    emits robosuite's raw gripper: override `gripper: {source_range: [-1, 1], invert: true}`.
    """
    groups = (
        EePosition("delta", "base", scale=0.05),
        EeRotation("delta", "base", "axis_angle", scale=0.5),
        Gripper(binarize_threshold=0.5),
    )
    state = StateSpace((EePosition(), EeRotation(format="axis_angle"), Gripper(source_range=None, signs=(1.0, -1.0))))
    return ActionSpace("libero_ee_delta", groups, chain="cumulative", state=state)


DROID_RAD_S_PER_UNIT = 0.2 * 15.0  # DROID's max joint delta per step (rad) x its control rate (Hz)


def droid_joint_velocity() -> ActionSpace:
    """pi0 / pi0-FAST on DROID (Franka): 7 joint velocities (rad/s) + gripper position.

    Source: openpi `examples/droid/main.py` (DROID RobotEnv with action_space="joint_velocity",
    gripper_action_space="position"; the gripper binarised at 0.5; 8 steps of a chunk at 15 Hz)
    and `src/openpi/policies/droid_policy.py` (state: 7 joint positions + gripper position).
    DROID's gripper position is 0 = open, 1 = closed (inverted here: the joint's low end is closed).
    Velocities are normalised: DROID's runtime moves a joint 0.2 rad x value per 15 Hz step
    (droid-dataset/droid `droid/robot_ik/robot_ik_solver.py` joint_velocity_to_delta), i.e. 3 rad/s per
    unit (scale 3.0), integrated at the chunk's dt from the plan's position.
    """
    state = StateSpace((JointPosition(), Gripper(invert=True)))
    return ActionSpace(
        "droid_joint_velocity",
        (JointVelocity(scale=DROID_RAD_S_PER_UNIT), Gripper(invert=True, binarize_threshold=0.5)),
        state=state,
    )


def aloha_joints() -> ActionSpace:
    """pi0 on ALOHA as an openpi policy server returns it: 14 absolute joint positions (2 x (6 arm
    joints + gripper)), state the same 14.

    Source: openpi `src/openpi/policies/policy_config.py` (output transforms: Unnormalize, then
    `AbsoluteActions(make_bool_mask(6, -1, 6, -1))` of `training/config.py` LeRobotAlohaDataConfig, then
    `AlohaOutputs`), `policies/aloha_policy.py` (AlohaOutputs flips joints 1, 2, 8, 9 and converts the
    grippers): what the server sends is absolute and in the robot's joint units, in the robot config's
    joint order (the openpi_remote backend). Not the raw output of a converted checkpoint run in-process
    (the pi0 backend): that one is relative to the state in the 12 arm joints (all but pi0_aloha_sim) and
    in pi's internal joint space; see vla_ros/backends/pi0/openpi_configs.py.
    """
    return ActionSpace("aloha_joints", (JointPosition(mode="absolute"),), state=StateSpace((JointPosition(),)))


def joint_absolute() -> ActionSpace:
    """Absolute joint positions in the robot's joint order, state the same (LeRobot SO-100/101 pi0 and
    SmolVLA fine-tunes without relative actions)."""
    return ActionSpace("joint_absolute", (JointPosition(mode="absolute"),), state=StateSpace((JointPosition(),)))


def joint_delta() -> ActionSpace:
    """Joint positions relative to the observed state, every step of a chunk (from_state).

    Source: openpi `src/openpi/transforms.py`: `DeltaActions` subtracts the current state from every
    action of a chunk for training and `AbsoluteActions` adds it back at inference.
    """
    return ActionSpace(
        "joint_delta", (JointPosition(mode="relative"),), chain="from_state", state=StateSpace((JointPosition(),))
    )


def _presets() -> dict[str, ActionSpace]:
    builders = (bridge_ee_delta, libero_ee_delta, droid_joint_velocity, aloha_joints, joint_absolute, joint_delta)
    return {builder.__name__: builder() for builder in builders}


PRESETS: dict[str, ActionSpace] = _presets()


def preset(name: str) -> ActionSpace:
    """The preset `name` (ActionSpaceError listing the known presets)."""
    if name not in PRESETS:
        raise ActionSpaceError(f"preset: unknown action space {name!r} (known: {sorted(PRESETS)})")
    return PRESETS[name]


_SPACE_KEYS = ("preset", "chain", "groups", "state", "ik", *ACTION_GROUPS)
_STATE_KEYS = ("groups", *STATE_GROUPS)


def action_space_from_dict(raw: Mapping[str, Any], source: str = "action_space") -> ActionSpace:
    """An ActionSpace from a YAML block: `preset`, and/or `groups`, `chain`, per-type overrides, `state`, `ik`.

    `groups: [{type: ee_position, mode: delta, ...}, ...]` replaces the preset's groups;
    `<type>: {field: value}` (e.g. `gripper: {invert: true}`) overrides fields of the one group of
    that type (`gripper: ignore` drops the gripper value: a robot whose gripper is commanded
    elsewhere); `state:` takes `groups` and per-type overrides likewise; `ik:` the IkSettings fields.
    """
    if not isinstance(raw, Mapping):
        raise ActionSpaceError(f"{source}: must be a mapping, got {raw!r}")
    _known_keys(raw, _SPACE_KEYS, source)
    if "preset" in raw:
        if not isinstance(raw["preset"], str):
            raise ActionSpaceError(f"{source}.preset: must be a preset name, got {raw['preset']!r}")
        try:
            base = preset(raw["preset"])
        except ActionSpaceError as exc:
            raise ActionSpaceError(f"{source}.{exc}") from None
    elif "groups" in raw:
        base = None
    else:
        raise ActionSpaceError(f"{source}: needs `preset` (one of {sorted(PRESETS)}) or `groups`")
    groups = _groups(raw["groups"], ACTION_GROUPS, f"{source}.groups") if "groups" in raw else base.groups
    groups = _override(groups, raw, ACTION_GROUPS, source)
    state = base.state if base is not None else StateSpace()
    if "state" in raw:
        state_raw = raw["state"]
        if not isinstance(state_raw, Mapping):
            raise ActionSpaceError(f"{source}.state: must be a mapping, got {state_raw!r}")
        _known_keys(state_raw, _STATE_KEYS, f"{source}.state")
        state_groups = (
            _groups(state_raw["groups"], STATE_GROUPS, f"{source}.state.groups")
            if "groups" in state_raw
            else state.groups
        )
        state_groups = _override(state_groups, state_raw, STATE_GROUPS, f"{source}.state")
        state = _build(StateSpace, {"groups": state_groups}, source)
    ik = base.ik if base is not None else IkSettings()
    if "ik" in raw:
        ik = _build_fields(IkSettings, raw["ik"], f"{source}.ik", base=ik)
    values = {
        "name": raw.get("preset", "custom"),
        "groups": groups,
        "chain": raw.get("chain", base.chain if base is not None else "cumulative"),
        "state": state,
        "ik": ik,
    }
    return _build(ActionSpace, values, source)


def _known_keys(raw: Mapping, known: tuple[str, ...], key: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ActionSpaceError(f"{key}.{unknown[0]}: unknown key (known: {list(known)})")


def _groups(raw: Any, kinds: dict, key: str) -> tuple[Group, ...]:
    if not isinstance(raw, list):
        raise ActionSpaceError(f"{key}: must be a list of groups, got {raw!r}")
    groups = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or entry.get("type") not in kinds:
            got = entry.get("type") if isinstance(entry, Mapping) else entry
            raise ActionSpaceError(f"{key}[{i}].type: must be one of {list(kinds)}, got {got!r}")
        fields_raw = {k: v for k, v in entry.items() if k != "type"}
        groups.append(_build_fields(kinds[entry["type"]], fields_raw, f"{key}[{i}]"))
    return tuple(groups)


def _override(groups: tuple[Group, ...], raw: Mapping, kinds: dict, key: str) -> tuple[Group, ...]:
    groups = list(groups)
    for kind in kinds:
        if kind not in raw:
            continue
        matches = [i for i, g in enumerate(groups) if g.type == kind]
        if len(matches) != 1:
            raise ActionSpaceError(
                f"{key}.{kind}: overrides need exactly one {kind} group, the space has {len(matches)} "
                f"({[g.type for g in groups]}); give `groups` instead"
            )
        group = groups[matches[0]]
        if raw[kind] == "ignore" and kind == "gripper" and "ignore" in kinds:  # a gripper commanded elsewhere
            groups[matches[0]] = Ignore(group.size)
        else:
            groups[matches[0]] = _build_fields(type(group), raw[kind], f"{key}.{kind}", base=group)
    return tuple(groups)


def _build_fields(cls, raw: Any, key: str, base=None):
    """cls(**raw) (over `base`'s values if given); unknown fields and invalid values name `key`."""
    if not isinstance(raw, Mapping):
        raise ActionSpaceError(f"{key}: must be a mapping, got {raw!r}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ActionSpaceError(f"{key}.{unknown[0]}: unknown field (known: {known})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return replace(base, **values) if base is not None else cls(**values)
    except ValueError as exc:  # ActionSpaceError and IkSettings' errors start with the field name
        raise ActionSpaceError(f"{key}.{exc}") from None
    except TypeError as exc:
        raise ActionSpaceError(f"{key}: {exc}") from None


def _build(cls, values: dict, key: str):
    try:
        return cls(**values)
    except ActionSpaceError as exc:
        raise ActionSpaceError(f"{key}.{exc}") from None
