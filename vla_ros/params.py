"""One typed parameter schema per node, ROS-free.

Each `Param` says its type (from the default), bounds, choices, unit-bearing description and
whether it may change at run time; values are checked by a pydantic type built from it
(`Param.adapter`). The same schema is used to declare the nodes' ROS parameters
(with their ranges), to validate `ros2 param set` at run time, to validate the robot config's
`policy:` / `executor:` blocks, by launch and the bring-up, and to write the README tables
(`vla-ros params`). Per-joint limits are a map declared once (`JOINT_LIMITS`), with
ros2_control's names: `joint_limits.<joint>.<key>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_ros.core.plan import BLEND_MODES
from vla_ros.core.types import JointLimits


@dataclass(frozen=True)
class Param:
    """One parameter. `kind` is derived from the default: bool, int, float, str, str_list, float_list."""

    name: str
    default: Any
    description: str
    changeable: bool = False  # may change while the node runs (`ros2 param set`)
    min: float | None = None  # inclusive lower bound
    max: float | None = None  # inclusive upper bound
    above: float | None = None  # exclusive lower bound (e.g. > 0)
    choices: tuple[str, ...] | None = None
    list_kind: str | None = None  # item kind of a list whose default is empty ('float' or 'str')

    @property
    def kind(self) -> str:
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "float"
        if isinstance(d, str):
            return "str"
        if isinstance(d, (list, tuple)):
            item = self.list_kind or _item_kind(d[0] if d else 0.0)
            return f"{item}_list"
        raise TypeError(f"parameter {self.name}: unsupported default {d!r}")

    def rule(self) -> str:
        """The constraint in words (for errors and the README)."""
        lists = {"str_list": "list of strings", "float_list": "list of numbers", "int_list": "list of integers"}
        parts = [lists.get(self.kind, self.kind)]
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        return ", ".join(parts)

    def problem(self, value: Any) -> str | None:
        """Why `value` is not valid for this parameter, or None (checked by the parameter's pydantic type)."""
        import pydantic

        try:
            self.adapter().validate_python(value)
        except pydantic.ValidationError as exc:
            kind = exc.errors()[0]["type"]
            if kind == "greater_than":
                return f"must be > {self.above:g}, got {value!r}"
            if kind == "greater_than_equal":
                return f"must be >= {self.min:g}, got {value!r}"
            if kind == "less_than_equal":
                return f"must be <= {self.max:g}, got {value!r}"
            if kind == "literal_error":
                return f"must be one of {list(self.choices)}, got {value!r}"
            return f"must be a {self.rule()}, got {value!r}"
        return None

    def adapter(self):
        """The pydantic validator of this parameter: strict type from the default, bounds, choices (built once)."""
        cached = self.__dict__.get("_adapter")
        if cached is None:
            cached = _adapter(self)
            object.__setattr__(self, "_adapter", cached)
        return cached

    def coerce(self, value: Any) -> Any:
        """An int where a float is expected becomes a float (YAML writes 1 for 1.0)."""
        if self.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.kind == "float_list" and isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        return value


def _adapter(param: Param):
    """pydantic TypeAdapter for `param`: bool / int / float (no NaN) / str / lists of them, with its bounds and
    choices as constraints."""
    from typing import Annotated, Literal

    import pydantic

    number = Annotated[float, pydantic.AfterValidator(_not_nan)]
    types = {"bool": bool, "int": int, "float": number, "str": str}
    kind = param.kind
    strict = pydantic.ConfigDict(strict=True)
    if kind.endswith("_list"):
        item = types[kind.removesuffix("_list")]
        if kind == "float_list":
            item = Annotated[float, pydantic.Field(allow_inf_nan=False)]
        return pydantic.TypeAdapter(list[item] | tuple[item, ...], config=strict)
    base = Literal[param.choices] if param.choices else types[kind]
    if kind not in ("int", "float"):
        return pydantic.TypeAdapter(base, config=strict)
    bounds = pydantic.Field(gt=param.above, ge=param.min, le=param.max)
    return pydantic.TypeAdapter(Annotated[base, bounds], config=strict)


def _not_nan(value: float) -> float:
    if math.isnan(value):
        raise ValueError("NaN")
    return value


def _item_kind(item: Any) -> str:
    if isinstance(item, str):
        return "str"
    return "int" if isinstance(item, int) and not isinstance(item, bool) else "float"


class Schema(tuple):
    """The parameters of one node, by name."""

    def __new__(cls, *params: Param):
        return super().__new__(cls, params)

    def get(self, name: str) -> Param | None:
        return next((p for p in self if p.name == name), None)

    def names(self) -> list[str]:
        return [p.name for p in self]

    def validate(self, values: dict[str, Any], where: str) -> dict[str, Any]:
        """Checked, coerced copy of `values`; ValueError naming `where`, the key, value and rule."""
        out = {}
        for key, value in values.items():
            param = self.get(key)
            if param is None:
                raise ValueError(f"{where}.{key}: unknown parameter (known: {sorted(self.names())})")
            problem = param.problem(param.coerce(value))
            if problem:
                raise ValueError(f"{where}.{key}: {problem}")
            out[key] = param.coerce(value)
        return out

    def markdown(self) -> str:
        rows = ["| parameter | default | rule | description |", "|---|---|---|---|"]
        for p in self:
            run_time = " (changeable at run time)" if p.changeable else ""
            rows.append(f"| `{p.name}` | `{p.default!r}` | {p.rule()} | {p.description}{run_time} |")
        return "\n".join(rows)


POLICY = Schema(
    Param("backend", "octo", "policy backend (registry name); applies at the next configure", changeable=True),
    Param(
        "model_path",
        "models/demo",
        "checkpoint folder; relative paths resolve against the package (source tree or share/vla_ros); '' = the "
        "backend settings' `checkpoint`; applies at the next configure",
        changeable=True,
    ),
    Param(
        "device",
        "",
        "torch device (cpu, cuda, cuda:N); '' = from the backend settings; applies at the next configure",
        changeable=True,
    ),
    Param(
        "backend_settings",
        "",
        "backend settings over the checkpoint's, as a YAML mapping, e.g. '{steps: 5, dtype: bfloat16}' (the robot "
        "config's extra `policy:` keys land here); applies at the next configure",
        changeable=True,
    ),
    Param("num_threads", 0, "torch CPU threads (0 = torch default)", min=0),
    Param("seed", 0, "sampler seed (reproducible noise)", min=0),
    Param("camera_names", ["front"], "robot camera names, in the order of camera_topics"),
    Param(
        "camera_topics",
        ["camera/image_raw"],
        "image topic per camera (same order); a topic ending in /compressed carries sensor_msgs/CompressedImage",
    ),
    Param("joint_names", [""], "robot joints (state input and action output), in command order"),
    Param(
        "instruction",
        "",
        "language goal; settable through the parameter service and the `instruction` topic",
        changeable=True,
    ),
    Param("max_instruction_chars", 256, "longest accepted instruction (characters)", min=1),
    Param(
        "max_observation_age_s",
        0.5,
        "never infer from an image or joint state older than this (seconds)",
        changeable=True,
        above=0.0,
    ),
    Param(
        "inference_period_s",
        0.3,
        "longest time between chunk requests while active; requests come earlier when the plan would run out before "
        "the next chunk (measured latency) (seconds)",
        changeable=True,
        above=0.0,
    ),
    Param("schedule_margin_s", 0.05, "the next chunk is due this long before the running plan ends (seconds)", min=0.0),
    Param(
        "inference_delay_s",
        0.0,
        "artificial extra latency before each chunk is published, to test blending under slow inference (seconds)",
        changeable=True,
        min=0.0,
    ),
    Param(
        "use_plan_prefix",
        True,
        "hand the executor's `plan_prefix` (guided blend mode) to backends that can continue it (RTC)",
    ),
    Param(
        "warmup", True, "run one inference on a synthetic observation at configure, so the first real one is not slow"
    ),
    Param(
        "urdf_path",
        "",
        "robot URDF for the action space's kinematics (EE actions through IK, EE state); relative to the package or "
        "`example-robot-data:<path>`; applies at the next configure",
        changeable=True,
    ),
    Param(
        "end_effector_link",
        "",
        "URDF link of end-effector actions and states ('' = none: joint action spaces only); applies at the next "
        "configure",
        changeable=True,
    ),
    Param(
        "base_link",
        "",
        "URDF link whose frame end-effector values are in ('' = the URDF root); applies at the next configure",
        changeable=True,
    ),
    Param(
        "gripper_joint",
        "",
        "joint that gripper action values drive ('' = none); applies at the next configure",
        changeable=True,
    ),
    Param(
        "action_space",
        "",
        "the robot config's `action_space:` block as a YAML mapping ('' = the checkpoint's alone), e.g. '{preset: "
        "bridge_ee_delta}' for a checkpoint that names none; applies at the next configure",
        changeable=True,
    ),
    Param(
        "resume_after_restart",
        True,
        "after a restart of this node's process (respawn), take over the task the previous process held (kept by "
        "the lifecycle manager) and infer from fresh observations; false: hold until a new instruction; a task "
        "cleared (~/clear_task, ~/reset) stays cleared either way",
        changeable=True,
    ),
)

OUTPUTS = (
    "position_array",
    "joint_trajectory",
    "joint_trajectory_plan",
    "joint_velocity",
    "joint_state",
    "pose",
    "twist",
)

EXECUTOR = Schema(
    Param("joint_names", [""], "command order of the joints (Float64MultiArray layout)"),
    Param("control_rate_hz", 100.0, "command rate (Hz)", above=0.0, max=2000.0),
    Param("joint_state_timeout_s", 0.2, "hold when no joint state arrived for this long (seconds)", above=0.0),
    Param("plan_timeout_s", 0.5, "hold when the plan ended this long ago (seconds)", min=0.0),
    Param(
        "policy_heartbeat_timeout_s",
        1.0,
        "hold (drop the plan, decelerate to rest) when the policy's `vla_policy/heartbeat`, once seen, has stopped "
        "this long; chunks are refused until it beats again (seconds; 0 = no check)",
        min=0.0,
    ),
    Param("max_stamp_skew_s", 2.0, "reject chunks stamped further than this from now (seconds)", above=0.0),
    Param("position_margin_rad", 0.0, "keep commands this far inside the position limits (radians)", min=0.0),
    Param(
        "output",
        "position_array",
        "command message on `commands`: position_array (Float64MultiArray, forward position controller), "
        "joint_trajectory_plan (the whole limited plan to rest as one JointTrajectory with positions, velocities and "
        "accelerations, sent at each change, for ros2_control's JointTrajectoryController: docs/real-robots.md), "
        "joint_velocity (Float64MultiArray of joint velocities, forward velocity controller), joint_trajectory "
        "(one-point JointTrajectory per tick), joint_state (JointState), or for robots driven in Cartesian space pose "
        "(PoseStamped of `cartesian_link`) or twist (TwistStamped from the previous command to this one, MoveIt "
        "Servo); the Cartesian outputs are the FK of the same limited, workspace-checked joint commands",
        choices=OUTPUTS,
    ),
    Param(
        "controller_rate_hz",
        1000.0,
        "update rate of the robot's controller (Hz): joint_trajectory_plan checks every plan it sends sampled at this "
        "rate, as the JointTrajectoryController interpolates it",
        above=0.0,
        max=100000.0,
    ),
    Param(
        "plan_start_delay_s",
        0.02,
        "joint_trajectory_plan: a new plan leaves the running one this long after it is computed (seconds, plus the "
        "time computing plans takes): the controller must receive it by then (transport, the controller manager's "
        "callback)",
        min=0.0,
    ),
    Param(
        "plan_horizon_s",
        2.0,
        "joint_trajectory_plan: a plan longer than this is sent in parts, each ending at rest (seconds)",
        above=0.0,
    ),
    Param(
        "dry_run",
        False,
        "compute everything but publish the commands on `dry_run/commands` only, never on `commands` (the "
        "controller's topic)",
    ),
    Param(
        "speed_scale",
        1.0,
        "slow run: the velocity, acceleration and jerk limits times s, s^2, s^3 and every chunk's point times "
        "stretched by 1/s (0 < s <= 1; 1 = full speed)",
        above=0.0,
        max=1.0,
    ),
    Param(
        "cartesian_link", "", "URDF link commanded by the pose / twist outputs (the robot config's end_effector.link)"
    ),
    Param(
        "cartesian_frame", "", "URDF link whose frame the pose / twist outputs are in (frame_id; '' = the URDF root)"
    ),
    Param(
        "blend_mode",
        "replace",
        "how a new chunk meets the running plan; guided publishes `plan_prefix` so the policy infers chunks that "
        "continue the plan (RTC)",
        choices=BLEND_MODES,
    ),
    Param("crossfade_s", 0.2, "crossfade window (seconds)", above=0.0),
    Param("ensemble_m", 0.1, "temporal_ensemble weight exp(-m i) of the i-th newest prediction", min=0.0),
    Param(
        "lookahead_s",
        0.1,
        "the jerk limiter steers to the plan's state this far ahead (seconds; smoother tracking, no lag)",
        min=0.0,
    ),
    Param("plan_prefix_rate_hz", 20.0, "rate of `plan_prefix` (the plan ahead) in guided mode (Hz)", above=0.0),
    Param("urdf_path", "", "robot URDF for the workspace check (path; relative to the package)"),
    Param("workspace_link", "", "URDF link kept inside the workspace ('' = no workspace check)"),
    Param("workspace_min", [0.0, 0.0, 0.0], "workspace box lower corner x, y, z (metres, URDF base frame)"),
    Param("workspace_max", [0.0, 0.0, 0.0], "workspace box upper corner x, y, z (metres)"),
    Param(
        "workspace_keep_out", [], "keep-out boxes, 6 numbers each: min x, y, z, max x, y, z (metres)", list_kind="float"
    ),
    Param(
        "status_rate_hz",
        10.0,
        "rate of `~/status` (diagnostic_msgs/DiagnosticStatus; also sent on every state change) (Hz)",
        above=0.0,
    ),
    Param(
        "record_path",
        "",
        "if set, write the run (chunks, commands, measured joints, limits) to this .npz at cleanup/shutdown; plot it "
        "with `vla-ros plot`",
    ),
    Param(
        "deactivate_timeout_s",
        3.0,
        "on deactivate (and shutdown) brake to rest for at most this long before commands stop (seconds)",
        above=0.0,
    ),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics (seconds)", above=0.0),
    Param(
        "plan_limit_share",
        0.5,
        "the plan is smoothed to keep the velocity limit and this share of the acceleration and jerk limits "
        "(lower: smoother); a chunk no smoothing keeps within them is slowed down",
        above=0.0,
        max=1.0,
    ),
    Param(
        "routine_limit_share",
        0.5,
        "motions the executor makes itself (stops on deactivate or when the plan ran out, the filter's catch-up to "
        "the plan) use this share of the acceleration and jerk limits where that keeps every limit; the e-stop, "
        "stale joints and braking for a limit use the full limits",
        above=0.0,
        max=1.0,
    ),
    Param(
        "glitch_margin_rad",
        0.05,
        "a measured joint farther than max_velocity x elapsed + this from the last accepted one is a sensor glitch, "
        "ignored (radians)",
        above=0.0,
    ),
    Param("glitch_settle_s", 0.5, "a measured jump that persists this long is real and accepted (seconds)", above=0.0),
    Param(
        "clock_jump_s",
        0.5,
        "ROS time moving this much more (or less) than the steady clock between ticks is a clock jump: the plan is "
        "dropped and the arm holds (seconds)",
        above=0.0,
    ),
    Param(
        "realtime_priority",
        0,
        "SCHED_FIFO priority of the control loop thread (1-98; 0 = normal scheduling), the ROS callback thread one "
        "below (they share the interpreter lock); when not permitted, one log line says why and the loop runs at "
        "normal priority",
        min=0,
        max=98,
    ),
    Param(
        "cpu_affinity",
        [],
        "CPUs the control loop thread is pinned to (indices; empty = not pinned)",
        list_kind="int",
    ),
    Param("lock_memory", False, "lock the process memory (mlockall) so the control loop never page-faults"),
    Param(
        "gc_between_ticks",
        True,
        "keep Python's garbage collection out of the ticks: freeze start-up objects, collect only when a tick leaves "
        "slack",
    ),
)

SIM = Schema(
    Param("image_width", 128, "camera image width (pixels)", min=8),
    Param("image_height", 128, "camera image height (pixels)", min=8),
    Param("camera_rate_hz", 10.0, "camera publish rate (Hz)", above=0.0),
    Param("joint_state_rate_hz", 100.0, "joint_states publish rate (Hz)", above=0.0),
    Param(
        "episode_seed",
        0,
        "seed of the episode the next ~/reset starts (cube placement and task)",
        changeable=True,
        min=0,
    ),
    Param(
        "max_episode_s",
        10.0,
        "an episode still running after this long is a failure (seconds)",
        changeable=True,
        above=0.0,
    ),
    Param(
        "robot_config",
        "",
        "robot config (name or path) to simulate from its URDF, with its joints, cameras and camera topics (no "
        "success criterion: outcome 'none'); '' = the bundled tabletop arm and its tasks",
    ),
    Param(
        "initial_positions",
        [],
        "with robot_config: start joint positions in its joint order (radians; [] = the sim's home pose of the arm)",
        list_kind="float",
    ),
    Param(
        "controller",
        "forward_position",
        "what follows `commands`: forward_position (Float64MultiArray of joint positions, each held until the next) "
        "or joint_trajectory (JointTrajectory, run as ros2_control's JointTrajectoryController runs it, at the "
        "physics rate of 500 Hz: core/jtc.py; a reset holds the new position); the bring-up sets the one the "
        "executor's output needs",
        choices=("forward_position", "joint_trajectory"),
    ),
)

MANAGER = Schema(
    Param(
        "node_names",
        ["vla_chunk_executor", "vla_policy"],
        "managed nodes, configured and activated in this order (deactivated in reverse)",
    ),
    Param("autostart", True, "configure and activate every managed node at start-up"),
    Param(
        "watch_period_s",
        0.5,
        "with autostart: how often each node's get_state is polled, to bring a restarted node up again (seconds; 0 = "
        "do not watch)",
        min=0.0,
    ),
    Param(
        "transition_timeout_s",
        120.0,
        "longest wait for one node's service and transition (seconds; configure loads the model)",
        above=0.0,
    ),
    Param(
        "liveness_timeout_s",
        10.0,
        "a managed node whose ~/heartbeat stops this long, or says this long that the node is deaf to a topic (a "
        "camera), is unresponsive: its stacks go to its log (SIGUSR1) and, with kill_unresponsive, it is stopped for "
        "respawn to replace (seconds; 0 = no liveness check)",
        min=0.0,
    ),
    Param(
        "kill_unresponsive",
        False,
        "SIGKILL an unresponsive node after its stack dump, so that respawn starts a new process (the bring-up sets "
        "it with respawn:=true); false: report it and leave it running",
    ),
)


@dataclass(frozen=True)
class LimitKey:
    name: str
    required: bool  # without a URDF, the robot config must give it
    positive: bool  # must be > 0


# Per joint: joint_limits.<joint>.<key>, ros2_control's joint_limits names; radians, seconds.
JOINT_LIMITS = (
    LimitKey("min_position", True, False),
    LimitKey("max_position", True, False),
    LimitKey("max_velocity", True, True),
    LimitKey("max_acceleration", False, True),  # unset: unlimited
    LimitKey("max_jerk", False, True),  # unset: unlimited
)
JOINT_LIMIT_KEYS = tuple(k.name for k in JOINT_LIMITS)


def joint_limits_from_values(joints: tuple[str, ...], value, where: str) -> JointLimits:
    """JointLimits from `value(joint, key) -> number | None`; ValueError naming `where.joint.key`.

    The one rule set for limits, used by the robot config and by the executor's parameters.
    """
    columns: dict[str, list[float]] = {k.name: [] for k in JOINT_LIMITS}
    for j in joints:
        for key in JOINT_LIMITS:
            v = value(j, key.name)
            name = f"{where}.{j}.{key.name}"
            if v is None:
                if key.required:
                    raise ValueError(
                        f"{name}: missing (every joint needs min_position, max_position, max_velocity, or a urdf "
                        "giving them)"
                    )
                v = math.inf
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                raise ValueError(f"{name}: must be a number, got {v!r}")
            if key.positive and not v > 0:
                raise ValueError(f"{name}: must be > 0, got {v}")
            columns[key.name].append(float(v))
        lo, hi = columns["min_position"][-1], columns["max_position"][-1]
        if lo >= hi:
            raise ValueError(f"{where}.{j}: min_position {lo} must be below max_position {hi}")
    return JointLimits(joints, *(np.array(columns[k]) for k in JOINT_LIMIT_KEYS))


def joint_limit_parameters(limits: JointLimits) -> dict[str, float]:
    """`joint_limits.<joint>.<key>` parameters of `limits` (unlimited values are left out)."""
    out = {}
    for i, j in enumerate(limits.names):
        for k in JOINT_LIMIT_KEYS:
            column = getattr(limits, k)
            if column is not None and math.isfinite(float(column[i])):
                out[f"joint_limits.{j}.{k}"] = float(column[i])
    return out
