"""One parameter schema per node: name, default (its type), unit-bearing description, read-only.

Nodes declare their ROS parameters from here, and `vla-ros params` prints the README tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    read_only: bool = True


POLICY_PARAMS = (
    Param("backend", "octo", "policy backend (registry name)"),
    Param("model_path", "models/demo", "checkpoint folder; a relative path is resolved against the package (source tree or share/vla_ros)"),
    Param("device", "cpu", "torch device, e.g. cpu or cuda:0"),
    Param("num_threads", 0, "torch CPU threads (0 = torch default)"),
    Param("camera_names", ["front"], "camera names as the backend knows them"),
    Param("camera_topics", ["camera/image_raw"], "image topic per camera (same order); a topic ending in /compressed carries sensor_msgs/CompressedImage"),
    Param("joint_names", [""], "joints of the state input and action output, in command order"),
    Param("instruction", "", "language goal; settable through the parameter service and the `instruction` topic", read_only=False),
    Param("max_instruction_chars", 256, "longest accepted instruction (characters)"),
    Param("auto_start", False, "start inferring as soon as an instruction is set", read_only=False),
    Param("max_observation_age_s", 0.5, "never infer from an image or joint state older than this (seconds)", read_only=False),
    Param("inference_period_s", 0.3, "longest time between chunk requests while running; requests come earlier when the plan would run out before the next chunk (measured latency) (seconds)", read_only=False),
    Param("schedule_margin_s", 0.05, "the next chunk is due this long before the running plan ends (seconds)"),
    Param("inference_delay_s", 0.0, "artificial extra latency before each chunk is published, to test blending under slow inference (seconds)", read_only=False),
    Param("use_plan_prefix", True, "hand the executor's `plan_prefix` (guided blend mode) to backends that can continue it (RTC)"),
    Param("max_guidance", 5.0, "RTC guidance weight clip (beta) for guided inference"),
    Param("seed", 0, "sampler seed (reproducible noise)"),
)

EXECUTOR_PARAMS = (
    Param("joint_names", [""], "command order of the joints (Float64MultiArray layout)"),
    Param("control_rate_hz", 100.0, "command rate (Hz)"),
    Param("joint_state_timeout_s", 0.2, "hold when no joint state arrived for this long (seconds)"),
    Param("plan_timeout_s", 0.5, "hold when the plan ended this long ago (seconds)"),
    Param("max_stamp_skew_s", 2.0, "reject chunks stamped further than this from now (seconds)"),
    Param("position_margin_rad", 0.0, "keep commands this far inside the position limits (radians)"),
    Param("output", "position_array", "command message on `commands`: position_array (Float64MultiArray, forward position controller), joint_trajectory (one-point JointTrajectory per tick, for a JointTrajectoryController) or joint_state (JointState)"),
    Param("blend_mode", "replace", "how a new chunk meets the running plan: replace, crossfade, temporal_ensemble or guided (publishes `plan_prefix` so the policy infers chunks that continue the plan: RTC)"),
    Param("crossfade_s", 0.2, "crossfade window (seconds)"),
    Param("ensemble_m", 0.1, "temporal_ensemble weight exp(-m i) of the i-th newest prediction"),
    Param("lookahead_s", 0.1, "the jerk limiter steers to the plan's state this far ahead (seconds; smoother tracking, no lag)"),
    Param("plan_prefix_rate_hz", 20.0, "rate of `plan_prefix` (the plan ahead) in guided mode (Hz)"),
    Param("urdf_path", "", "robot URDF for the workspace check (path; relative to the package)"),
    Param("workspace_link", "", "URDF link kept inside the workspace ('' = no workspace check)"),
    Param("workspace_min", [0.0, 0.0, 0.0], "workspace box lower corner x, y, z (metres, URDF base frame)"),
    Param("workspace_max", [0.0, 0.0, 0.0], "workspace box upper corner x, y, z (metres)"),
    Param("workspace_keep_out", [], "keep-out boxes, 6 numbers each: min x, y, z, max x, y, z (metres)"),
    Param("status_rate_hz", 10.0, "rate of `~/status` (diagnostic_msgs/DiagnosticStatus; also sent on every state change) (Hz)"),
    Param("record_path", "", "if set, write the run (chunks, commands, measured joints, limits) to this .npz on shutdown; plot it with `vla-ros plot`"),
    Param("start_enabled", True, "publish commands from start-up (else wait for ~/enable)"),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics (seconds)"),
)
# Per joint, ros2_control joint_limits names: joint_limits.<joint>.<key>
JOINT_LIMIT_KEYS = ("min_position", "max_position", "max_velocity", "max_acceleration", "max_jerk")

SIM_PARAMS = (
    Param("image_width", 128, "camera image width (pixels)"),
    Param("image_height", 128, "camera image height (pixels)"),
    Param("camera_rate_hz", 10.0, "camera publish rate (Hz)"),
    Param("joint_state_rate_hz", 100.0, "joint_states publish rate (Hz)"),
    Param("episode_seed", 0, "seed of the episode the next ~/reset starts (cube placement and task)", read_only=False),
    Param("max_episode_s", 10.0, "an episode still running after this long is a failure (seconds)", read_only=False),
)


def declare(node, params: tuple[Param, ...]) -> dict[str, Any]:
    """Declare `params` on `node` and return their values."""
    values = {}
    for p in params:
        descriptor = ParameterDescriptor(description=p.description, read_only=p.read_only)
        if p.default == []:  # an empty list has no type of its own: these are lists of numbers
            value = node.declare_parameter(p.name, Parameter.Type.DOUBLE_ARRAY, descriptor).value
            values[p.name] = list(value) if value is not None else []
        else:
            values[p.name] = node.declare_parameter(p.name, p.default, descriptor).value
    return values


def markdown_table(params: tuple[Param, ...]) -> str:
    rows = ["| parameter | default | description |", "|---|---|---|"]
    rows += [f"| `{p.name}` | `{p.default!r}` | {p.description}{'' if p.read_only else ' (changeable at run time)'} |" for p in params]
    return "\n".join(rows)
