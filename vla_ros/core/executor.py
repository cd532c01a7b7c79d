"""The chunk executor's logic, ROS-free: plan + watchdogs + jerk limiter, one `tick` per control period.

The core owns the whole state machine; the node (nodes/chunk_executor_node.py) only moves ROS
messages in and out, as ros2_controllers' trajectory class does for its controller.

States (reported in every `Command`):
  inactive      not activated (lifecycle unconfigured/inactive): nothing is commanded
  waiting       active, no joint state yet: nothing is commanded (the start position is unknown)
  holding       no plan, or the plan ran out: decelerate to rest and hold
  tracking      following the plan (through the limiter: it may still stop at a limit)
  stale_joints  joint states stopped arriving: decelerate to rest and hold
  estop         latched by `estop()` until `reset_estop()`: decelerate to rest and hold, chunks are refused
  stopping      `deactivate()` was called: decelerate to rest, then `inactive`; chunks are refused
  policy_unresponsive  the policy's heartbeat, once seen, stopped for `policy_heartbeat_timeout_s`: the plan is
                dropped, decelerate to rest and hold as `holding` does; chunks are refused until it beats again

Every hold decelerates within the acceleration and jerk limits: never a jump, never zeros. The
routine ones (holding, stopping) use `routine_limit_share` of the acceleration and jerk limits where
that keeps every limit (JerkLimiter.stop_gently), as does the tracker's filter; e-stop and stale
joints stop time-optimally.

With `stream_plan` the same loop runs ahead of time: each change (a chunk, a stop) yields the whole
motion to rest as one trajectory for the controller to interpolate (core/plan_stream.py, `take_plan`);
the ticks then report the state that trajectory commands and watch for the next change.

`speed_scale` s (0 < s <= 1) is a slow-motion run: the velocity, acceleration and jerk limits are
multiplied by s, s^2 and s^3 (the limits of the same motion played 1/s times slower) and every chunk's
point times are stretched by 1/s from its stamp.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import numpy as np

from vla_ros.core.input_guards import GlitchFilter, WriterArbiter
from vla_ros.core.jerk_limiter import JerkLimiter, scaled_limits
from vla_ros.core.jtc import TimedTrajectory
from vla_ros.core.plan import Plan
from vla_ros.core.plan_stream import PlanStream
from vla_ros.core.run_log import RunLog
from vla_ros.core.safety import ChunkRejected, check_chunk
from vla_ros.core.tracker import PlanTracker
from vla_ros.core.types import ActionChunk, JointLimits
from vla_ros.core.workspace import Workspace


@dataclass(frozen=True)
class ExecutorSettings:
    """Timing and safety settings (seconds, radians)."""

    joint_state_timeout_s: float = 0.2
    plan_timeout_s: float = 0.5  # hold once the plan's last point is this far in the past
    max_stamp_skew_s: float = 2.0
    position_margin_rad: float = 0.0
    blend: str = "replace"  # how a new chunk meets the running plan (core/plan.py BLEND_MODES)
    crossfade_s: float = 0.2
    ensemble_m: float = 0.1
    lookahead_s: float = 0.1  # the limiter steers to the plan's state this far ahead (smoothness)
    plan_limit_share: float = 0.5  # the plan is smoothed to keep this share of the acceleration and jerk limits
    routine_limit_share: float = 0.5  # routine stops and the filter's catch-up use this share of them
    glitch_margin_rad: float = 0.05  # a measured jump beyond max_velocity x elapsed + this is a glitch
    glitch_settle_s: float = 0.5  # a jump that persists this long is real (core/input_guards.py)
    clock_jump_s: float = 0.5  # ROS time moving this much more than the steady clock between ticks is a clock jump
    speed_scale: float = 1.0  # slow motion: limits x s, s^2, s^3 (velocity, acceleration, jerk), chunks stretched 1/s
    stream_plan: bool = False  # send the whole limited plan at each change (core/plan_stream.py), not each tick
    control_period_s: float = 0.01  # the tick period (stream_plan forecasts on this grid)
    controller_rate_hz: float = 1000.0  # stream_plan: the controller's rate, at which each plan sent is checked
    plan_start_delay_s: float = 0.02  # stream_plan: a change leaves the running plan this long (+ compute) ahead
    plan_horizon_s: float = 2.0  # stream_plan: plans longer than this are sent in parts (each ending at rest)
    policy_heartbeat_timeout_s: float = 0.0  # hold once the policy's heartbeat, once seen, stops this long (0 = off)

    def __post_init__(self):
        if not 0.0 < self.speed_scale <= 1.0:
            raise ValueError(f"speed_scale must be in (0, 1], got {self.speed_scale}")
        if self.control_period_s <= 0 or self.controller_rate_hz <= 0 or self.plan_horizon_s <= 0:
            raise ValueError(
                "control_period_s, controller_rate_hz and plan_horizon_s must be > 0, got "
                f"{self.control_period_s}, {self.controller_rate_hz}, {self.plan_horizon_s}"
            )
        if self.plan_start_delay_s < 0:
            raise ValueError(f"plan_start_delay_s must be >= 0, got {self.plan_start_delay_s}")
        if not self.policy_heartbeat_timeout_s >= 0:
            raise ValueError(f"policy_heartbeat_timeout_s must be >= 0, got {self.policy_heartbeat_timeout_s}")


@dataclass(frozen=True)
class Command:
    positions: np.ndarray | None  # (D,) radians, or None when nothing is commanded
    state: str
    limits: tuple[str, ...] = ()  # limits that changed this command (e.g. "position", "workspace")
    t_s: float = 0.0  # the time the command is for (seconds): stamp it with this
    velocities: np.ndarray | None = None  # (D,) rad/s commanded with the positions (the joint_velocity output)


# states in which the executor does what it should (anything else is reported as a warning)
NOMINAL_STATES = ("inactive", "waiting", "holding", "tracking", "stopping")


class ExecutorCore:
    """Turns chunks into limited, time-indexed position commands."""

    def __init__(
        self, limits: JointLimits, settings: ExecutorSettings = ExecutorSettings(), workspace: Workspace | None = None
    ):
        self.joint_names = limits.names
        self.settings = settings
        self.workspace = workspace
        self.limits = scaled_limits(limits, settings.speed_scale)  # what every command keeps
        self.limiter = JerkLimiter(
            self.limits,
            settings.position_margin_rad,
            workspace.contains if workspace else None,
            clearance=workspace.clearance if workspace else None,
            link_speed_bound=workspace.link_speed_bound_m_per_rad if workspace else None,
        )
        # the plan's points are clamped to the limiter's target range (the position limits minus the
        # margin) and the plan is smoothed until it keeps a share of the other limits (room to join it)
        lim = self.limiter
        self.plan = Plan(
            len(self.joint_names),
            settings.blend,
            settings.crossfade_s,
            settings.ensemble_m,
            (lim.lower, lim.upper),
            (lim.max_velocity, lim.max_acceleration, lim.max_jerk),
            settings.plan_limit_share,
        )
        self.tracker = PlanTracker(self.limiter, settings.routine_limit_share)
        self.counters: Counter[str] = Counter()
        self.estopped = False
        self.active = False
        self.stopping = False
        self.last_state = "inactive"
        self.last_limits: tuple[str, ...] = ()
        self.measured: np.ndarray | None = None  # (D,) newest measured positions
        self._joint_stamp_s: float | None = None
        self._last_tick_s: float | None = None
        self.last_switch_jump = 0.0  # radians: change of the steered-to target at the last chunk switch
        self.run_log: RunLog | None = None  # set to record the run (chunks, commands, measured joints)
        self.glitches = GlitchFilter(limits.max_velocity, settings.glitch_margin_rad, settings.glitch_settle_s)
        self.writers = WriterArbiter(settings.plan_timeout_s)
        self.stream = PlanStream(self) if settings.stream_plan else None
        self.stream_mode = ""  # with stream_plan: the command mode the last tick reported (for the run log)
        # the policy's heartbeat is timed on a steady clock (seconds; ROS time may be simulated or jump)
        self._policy_beat_s: float | None = None  # arrival of its last heartbeat; None: none yet
        self._steady_s = 0.0  # the steady clock at the last tick
        self.policy_unresponsive = False  # its heartbeat stopped: holding, chunks refused until it beats again

    # --- lifecycle -----------------------------------------------------------------------
    def activate(self) -> None:
        """Start commanding, from the measured position at rest (never from an old command)."""
        self.plan.clear()
        self.stopping = False
        self.active = True
        self._last_tick_s = None
        if self.stream is not None:
            self.stream.reset()
        if self.measured is not None:
            self.limiter.reset(self.measured)
        else:
            self.limiter.position = None  # starts at the first joint state

    def deactivate(self) -> None:
        """Decelerate to rest within the limits, then stop commanding (`active` turns False)."""
        self.plan.clear()
        if self.active:
            self.stopping = True

    # --- inputs --------------------------------------------------------------------------
    def on_joint_state(self, stamp_s: float, positions: np.ndarray) -> str | None:
        """Measured joint positions (D,) in `joint_names` order, received at `stamp_s`. While
        active, a sensor glitch (core/input_guards.py) is ignored and counted: returns why, else None."""
        positions = np.asarray(positions, dtype=float)
        if not self.active:  # not commanding: every measurement is the truth (e.g. the arm was moved)
            self.glitches.reset(stamp_s, positions)
        elif not self.glitches.accept(stamp_s, positions):
            self.counters["joint_glitches"] += 1
            jump = np.abs(positions - self.glitches.last[1])
            i = int(np.argmax(jump))
            return (
                f"sensor glitch: '{self.joint_names[i]}' jumped {jump[i]:.3f} rad in "
                f"{stamp_s - self.glitches.last[0]:.3f} s "
                f"(more than max_velocity x elapsed + {self.settings.glitch_margin_rad} rad)"
            )
        self.counters["joint_reanchored"] += self.glitches.reanchored
        self.measured = positions
        if self.active and self.limiter.position is None:
            self.limiter.reset(positions)
        self._joint_stamp_s = stamp_s
        if self.run_log is not None:
            self.run_log.add_measured(stamp_s, self.measured)
        return None

    def reject(self, reason: str) -> None:
        """Count a chunk message that could not even be read (malformed)."""
        self.counters["chunks_received"] += 1
        self.counters["chunks_rejected"] += 1
        self.counters[f"rejected_{reason}"] += 1

    def on_chunk(self, chunk: ActionChunk, now_s: float, source: str | None = None) -> ActionChunk:
        """Validate and merge a chunk; returns it in `joint_names` order. Raises ChunkRejected
        (counted) if it must not run. `source`: the writer (publisher id), for the one-writer rule."""
        self.counters["chunks_received"] += 1
        try:
            if not self.active or self.stopping:
                raise ChunkRejected("the executor is not active (lifecycle state inactive or deactivating)")
            if self.estopped:
                raise ChunkRejected("e-stop is latched; call reset_estop first")
            if self.policy_unresponsive:
                self.counters["rejected_policy_unresponsive"] += 1
                raise ChunkRejected(self.policy_hold_reason())
            if self.limiter.position is None:
                raise ChunkRejected("no joint state received yet; cannot start a plan")
            second_writer = self.writers.admit(source, now_s)
            if second_writer:
                self.counters["rejected_second_writer"] += 1
                raise ChunkRejected(second_writer)
            chunk = check_chunk(chunk, self.joint_names, now_s, self.settings.max_stamp_skew_s)
        except ChunkRejected:
            self.counters["chunks_rejected"] += 1
            raise
        if self.settings.speed_scale < 1.0:  # slow motion: the chunk's times stretched from its stamp
            chunk = dataclasses.replace(chunk, offsets_s=(chunk.times_s() - chunk.t0_s) / self.settings.speed_scale)
        ahead = now_s + self.settings.lookahead_s
        before = None if self.plan.empty else self.plan.interpolated(ahead)
        # the new plan starts at the last command's state, at the time it was due (streaming: at the
        # running plan's state where the new one takes over; points due before then are dropped)
        lim = self.limiter

        def merge(merge_s: float, anchor_s: float | None) -> int:
            dropped = self.plan.merge(chunk, merge_s, lim.position, lim.velocity, lim.acceleration, anchor_s=anchor_s)
            self.tracker.prepare(self.plan)  # the per-plan work here, not in the next control tick
            # how far the switch moved what the chunks ask for (the plan before smoothing; what blending should
            # keep small)
            jump = 0.0 if before is None else float(np.max(np.abs(self.plan.interpolated(ahead) - before)))
            self.last_switch_jump = jump
            return dropped

        if self.stream is None:
            dropped = merge(now_s, self._last_tick_s)
        else:
            dropped = self.stream.change(now_s, "plan", lambda join_s: merge(join_s, join_s))
        self.counters["points_dropped_late"] += dropped
        self.counters["chunks_slowed"] += self.plan.time_scale > 1.0  # no smoothing kept the limits at its pace
        self.counters["chunks_accepted"] += 1
        if self.run_log is not None:
            self.run_log.add_chunk(chunk, now_s, self.last_switch_jump)
        return chunk

    def on_policy_heartbeat(self, steady_s: float) -> float | None:
        """The policy's heartbeat arrived at `steady_s` (steady clock, seconds). If it ends a `policy_unresponsive`
        hold (the next chunk runs; none from before it does): the silence it ends (seconds), else None."""
        silent_s = steady_s - self._policy_beat_s if self.policy_unresponsive else None
        self._policy_beat_s = steady_s
        self.policy_unresponsive = False
        return silent_s

    def policy_hold_reason(self) -> str:
        """Why the executor holds for the policy, in words ('' when it does not)."""
        if not self.policy_unresponsive:
            return ""
        silent_s = self._steady_s - self._policy_beat_s
        return (
            f"policy unresponsive: no heartbeat for {silent_s:.1f} s (policy_heartbeat_timeout_s "
            f"{self.settings.policy_heartbeat_timeout_s:g}): holding, chunks refused until it beats again"
        )

    def _watch_policy(self, now_s: float) -> None:
        """While active (commanding), hold (drop the plan; with stream_plan send the gentle stop) once the policy's
        heartbeat, seen at least once, has stopped for `policy_heartbeat_timeout_s`."""
        timeout = self.settings.policy_heartbeat_timeout_s
        if timeout <= 0 or not self.active or self._policy_beat_s is None or self.policy_unresponsive:
            return
        if self._steady_s - self._policy_beat_s <= timeout:
            return
        self.policy_unresponsive = True
        self.counters["policy_unresponsive"] += 1
        self.plan.clear()
        if self.stream is not None and self.stream.mode == "plan":
            self.stream.change(now_s, "holding")  # the trajectory sent would run the old plan on

    def estop(self) -> None:
        self.estopped = True
        self.plan.clear()
        self.counters["estops"] += 1

    def reset_estop(self) -> None:
        self.estopped = False
        self.plan.clear()

    def take_plan(self) -> tuple[TimedTrajectory, float] | None:
        """With `stream_plan`: the trajectory to send (absolute stamp) and the time the controller must
        have it by (its join: a controller period before), once per change; None when nothing changed."""
        return None if self.stream is None else self.stream.take()

    def plan_ahead(self, now_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The plan from now on, times (K,) and positions (K, D), or None when not tracking."""
        if self.plan.empty or self.last_state != "tracking":
            return None
        return self.plan.ahead(now_s)

    # --- control loop --------------------------------------------------------------------
    def tick(self, now_s: float, elapsed_s: float | None = None, steady_s: float | None = None) -> Command:
        """The command for time `now_s` (seconds); call at the control rate.

        elapsed_s: seconds since the previous tick by a steady clock (the limiter integrates this);
        default: the change of `now_s`. steady_s: that steady clock now (seconds; the policy's heartbeat is
        timed on it); default `now_s`. When `now_s` (ROS time, maybe simulated) moves backwards or
        further than `elapsed_s` + `clock_jump_s`, it is a clock jump: counted, the plan (timed on
        the old clock) is dropped and the arm holds; the step stays that of `elapsed_s`.
        """
        if elapsed_s is not None and self._last_tick_s is not None:
            advance = now_s - self._last_tick_s
            if advance < 0 or advance > elapsed_s + self.settings.clock_jump_s:
                self.counters["clock_jumps"] += 1
                self.plan.clear()
            self._last_tick_s = now_s - elapsed_s
        self._steady_s = now_s if steady_s is None else steady_s
        self._watch_policy(now_s)
        command = self._command(now_s) if self.stream is None else self._stream_command(now_s)
        if self.run_log is not None and command.positions is not None:
            mode = f"tracking/{self.tracker.last_mode}" if command.state == "tracking" else command.state
            mode = self.stream_mode if self.stream is not None else mode
            self.run_log.add_command(now_s, command.positions, self.limiter.acceleration, mode)
        return command

    def _command(self, now_s: float) -> Command:
        dt = 0.0 if self._last_tick_s is None else max(0.0, now_s - self._last_tick_s)
        self._last_tick_s = now_s
        if not self.active:
            return self._emit(now_s, None, "inactive")
        if self.limiter.position is None:
            return self._emit(now_s, None, "waiting")
        if self.stopping:
            command = self.limiter.stop_gently(dt, self.settings.routine_limit_share)
            if self.limiter.at_rest:
                self.active = self.stopping = False
            return self._emit(now_s, command, "stopping")
        if self.estopped:
            return self._emit(now_s, self.limiter.brake(dt), "estop")
        if now_s - self._joint_stamp_s > self.settings.joint_state_timeout_s:
            self.plan.clear()
            return self._emit(now_s, self.limiter.brake(dt), "stale_joints")
        if self.plan.empty or now_s > self.plan.end_time_s + self.settings.plan_timeout_s:
            self.plan.clear()
            state = "policy_unresponsive" if self.policy_unresponsive else "holding"
            return self._emit(now_s, self.limiter.stop_gently(dt, self.settings.routine_limit_share), state)
        # follow the plan; where that would break a limit, ruckig steers to the plan's state a little
        # ahead (never past its end, where it is at rest)
        lookahead = min(max(self.plan.end_time_s - now_s, 0.0), self.settings.lookahead_s)
        command = self.tracker.step(self.plan, now_s, dt, lookahead)
        active = self.limiter.active
        return self._emit(now_s, command, "tracking", tuple(sorted(set(active))) if active else ())

    def _stream_command(self, now_s: float) -> Command:
        """A tick with `stream_plan`: the state the sent trajectory commands now; a stop, stale joints or
        the horizon running out sends a new trajectory (PlanStream.tick)."""
        self._last_tick_s = now_s
        if not self.active:
            return self._emit(now_s, None, "inactive")
        if self.limiter.position is None:
            return self._emit(now_s, None, "waiting")
        state, name, limits, mode = self.stream.tick(now_s)
        lim = self.limiter
        if state is not None:  # else nothing was sent: at rest where the limiter is
            lim.position, lim.velocity, lim.acceleration = state[0], state[1], state[2]
        self._last_tick_s = now_s
        if self.stopping and self.stream.mode in ("stopping", "rest") and now_s >= self.stream.end_s:
            self.active = self.stopping = False  # at rest: commands stop
        self.stream_mode = mode
        if name == "holding" and self.policy_unresponsive:
            name = "policy_unresponsive"
        return self._emit(now_s, lim.position.copy(), name, limits)

    def _emit(self, now_s: float, positions: np.ndarray | None, state: str, limits: tuple[str, ...] = ()) -> Command:
        if state != self.last_state:
            self.counters[f"entered_{state}"] += 1
            self.last_state = state
        self.last_limits = limits
        for name in limits:
            self.counters[f"limit_{name}"] += 1
        velocities = None if positions is None else self.limiter.velocity.copy()
        return Command(positions, state, limits, now_s, velocities)

    # --- reporting -----------------------------------------------------------------------
    def status(self, now_s: float) -> tuple[bool, dict[str, object]]:
        """(nominal, values) for `~/status`: state, active limits, plan left (s), e-stop, active, the policy's
        heartbeat age (s; 'none' before the first) and, while holding for the policy, `hold_reason`.

        Not nominal: e-stop, stale joints, an unresponsive policy, or the workspace limit holding the arm back.
        """
        plan_left = max(0.0, self.plan.end_time_s - now_s) if not self.plan.empty else 0.0
        nominal = self.last_state in NOMINAL_STATES and "workspace" not in self.last_limits
        values = {
            "state": self.last_state,
            "active_limits": ",".join(self.last_limits),
            "plan_left_s": f"{plan_left:.3f}",
            "estop": self.estopped,
            "active": self.active,
            "policy_heartbeat_age_s": "none"
            if self._policy_beat_s is None
            else f"{max(0.0, self._steady_s - self._policy_beat_s):.2f}",
        }
        if self.policy_unresponsive:
            values["hold_reason"] = self.policy_hold_reason()
        return nominal, values
