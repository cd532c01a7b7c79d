"""PolicyCore: the policy side's one loop, ROS-free (as ExecutorCore is the executor's).

Camera frames and joint states go into an observation buffer; when an instruction is set, the core
infers from the newest observation (on the scheduler's cadence, waiting for frames fresh enough),
checks the chunk, drops it if its observation went stale, and hands it to `publish`; it keeps the
counters and timings the diagnostics read. The policy node (nodes/policy_node.py) only translates ROS
messages and parameters into these calls; evaluation, benchmarks and tuning drive the same core.

Times are seconds on the `clock` the owner gives (ROS time in the node, sim time in evaluation);
stage durations are `time.perf_counter` intervals.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.backends.action_output import RobotBody
from vla_ros.backends.base import Backend, BackendError, load_backend
from vla_ros.backends.settings import describe
from vla_ros.core.observation import ObservationBuffer, ObservationError
from vla_ros.core.safety import ChunkRejected, check_policy_chunk
from vla_ros.core.scheduling import InferenceScheduler, LatencyEstimate
from vla_ros.core.stage_times import StageTimes
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

PREFIX_WAIT_S = 0.15  # longest wait for the executor's plan prefix to include the last chunk (3 periods at 20 Hz)
FAULT_COUNTERS = (
    "backend_errors",
    "outputs_rejected",
    "chunks_dropped_stale",
    "frames_out_of_order",
    "camera_silences",
)


class Log:
    """Where the core reports: Python's `logging` (logger `vla_ros.policy`) unless the owner gives its own
    (the node: its ROS logger, throttled per `key`)."""

    def __init__(self):
        self.logger = logging.getLogger("vla_ros.policy")

    def info(self, text: str) -> None:
        self.logger.info(text)

    def warning(self, text: str, key: str = "") -> None:
        self.logger.warning(text)

    def error(self, text: str, key: str = "") -> None:
        self.logger.error(text)


@dataclasses.dataclass
class PolicyCounters:
    """What /diagnostics reports of the chunks: published, guided, cut short, not published and why."""

    published: int = 0
    guided: int = 0
    truncated: int = 0  # published shorter than predicted
    rejected: int = 0  # no convertible point (not published)
    ik_failures: int = 0  # of those two, cut by an unreachable pose
    last_truncation: str = ""
    faults: Counter = dataclasses.field(default_factory=Counter)  # FAULT_COUNTERS
    last_fault: str = ""  # the newest fault, in words
    frame_to_chunk_s: deque = dataclasses.field(default_factory=lambda: deque(maxlen=10_000))
    inference_s: deque = dataclasses.field(default_factory=lambda: deque(maxlen=10_000))


class PolicyCore:
    """Observations in, checked action chunks out, for one backend on one robot.

    cameras / joints: the robot's (observation order); params(name): the current value of a policy
    parameter (`max_observation_age_s`, `inference_period_s`, `inference_delay_s`; run-time changes
    apply at the next cycle); clock(): now in seconds; log: where problems are reported.
    """

    def __init__(
        self,
        cameras: tuple[str, ...],
        joints: tuple[str, ...],
        params: Callable[[str], Any],
        clock: Callable[[], float],
        log: Log | None = None,
        schedule_margin_s: float = 0.0,
    ):
        self.cameras, self.joints, self.params, self.clock = tuple(cameras), tuple(joints), params, clock
        self.log = log or Log()
        self.schedule_margin_s = schedule_margin_s
        self.backend: Backend | None = None
        self.instruction = ""
        self.buffer = ObservationBuffer(self.cameras, self.joints)
        self._prefix_ready = threading.Condition()  # a plan prefix arrived
        self.watch_cameras_from_now()
        self.reset_stats()

    def reset_stats(self) -> None:
        self.counters = PolicyCounters()
        self.stage_times = StageTimes()  # per chunk: receive, convert, wait, predict, message, publish (s)
        # camera -> (frame stamp s, stamp -> callback s, conversion s, perf_counter when stored) of its newest frame
        self.frame_timing: dict[str, tuple[float, float, float, float]] = {}
        self.scheduler = InferenceScheduler(self.params("inference_period_s"), self.schedule_margin_s)
        self.snapshot_to_publish = LatencyEstimate()  # how long after its observation a chunk takes effect
        self._prefix: tuple[float, PlanPrefix, float] | None = None  # (received at, plan ahead, its end time)
        self._prefix_seen = False  # the executor publishes its plan (guided mode)
        self.last_chunk_end_s: float | None = None  # time of the last point of the last chunk published

    # --- the backend -------------------------------------------------------------------------
    def load(
        self, name: str, model_path: Path | None, overrides: dict, robot: RobotBody, seed: int = 0, num_threads: int = 0
    ) -> Backend:
        """Load backend `name` for this robot (BackendError if its joints or cameras are not the robot's)."""
        started = time.monotonic()
        backend = load_backend(name, model_path, overrides, seed=seed, num_threads=num_threads, robot=robot)
        missing_joints = [j for j in backend.joint_names if j not in self.joints]
        missing_cams = [c for c in backend.camera_names if c not in self.cameras]
        if missing_joints or missing_cams:
            backend.close()
            raise BackendError(
                f"model {model_path} does not fit the robot: joints {missing_joints} and cameras {missing_cams} are "
                f"not in the robot config (joints {list(self.joints)}, cameras {list(self.cameras)})"
            )
        self.log.info(
            f"backend '{name}' loaded from {model_path} in {time.monotonic() - started:.1f} s; joints "
            f"{list(backend.joint_names)}, cameras {list(backend.camera_names)}, horizon {backend.horizon} x "
            f"{backend.dt_s} s"
        )
        if backend.settings is not None:
            self.log.info(f"effective backend settings: {describe(backend.settings, backend.settings_sources)}")
        if backend.provenance:
            self.log.info("from the checkpoint: " + ", ".join(f"{k} <- {v}" for k, v in backend.provenance.items()))
        out = backend.output
        self.log.info(
            f"action space '{out.space.name}' ({', '.join(g.type for g in out.space.groups)}; {out.action_dim} values "
            f"per point, state {out.state_dim}) from {out.source}"
        )
        self.backend = backend
        return backend

    def warm_up(self) -> None:
        """One inference on a synthetic observation (black images, joints at zero): the first real inference
        is then not slowed by lazy initialisation."""
        images = {c: np.zeros((224, 224, 3), np.uint8) for c in self.cameras}
        obs = Observation(0.0, images, self.joints, np.zeros(len(self.joints)), "warm up")
        started = time.monotonic()
        self.backend.predict(obs)
        self.backend.reset()
        self.log.info(f"warm-up inference took {(time.monotonic() - started) * 1e3:.0f} ms")

    def release(self) -> None:
        """Free the model (and its GPU memory) and forget the observations."""
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self.buffer.clear()

    def reset(self) -> None:
        """A new episode: no observations, no plan, the backend's episode state cleared."""
        self.buffer.clear()
        self.forget_plan()
        if self.backend is not None:
            self.backend.reset()

    # --- inputs ------------------------------------------------------------------------------
    def instruction_problem(self, text: str) -> str | None:
        """Why `text` cannot be the task (empty, longer than `max_instruction_chars`), or None."""
        if not text.strip():
            return "instruction is empty"
        limit = self.params("max_instruction_chars")
        if len(text) > limit:
            return f"instruction has {len(text)} characters, more than max_instruction_chars={limit}"
        return None

    def watch_cameras_from_now(self) -> None:
        """Camera silence is counted from now (an activation: the time before it is not silence)."""
        self._silent_since: dict[str, float] = {}

    def silent_cameras(self, active: bool, silent_s: float) -> list[tuple[str, float]]:
        """(camera, seconds) of each camera without a usable frame for `silent_s` while `active`, once per
        `silent_s` while it lasts; each counted as a `camera_silences` fault."""
        if not active:
            self.watch_cameras_from_now()
            return []
        now, silent = time.perf_counter(), []
        for cam in self.cameras:
            timing = self.frame_timing.get(cam)
            since = self._silent_since.setdefault(cam, now)
            if timing is not None and timing[3] > since:
                self._silent_since[cam] = timing[3]
            elif now - since >= silent_s:
                self.counters.faults["camera_silences"] += 1
                silent.append((cam, now - since))
                self._silent_since[cam] = now
        return silent

    def add_image(self, camera: str, stamp_s: float, rgb: np.ndarray, received_s: float, received: float) -> bool:
        """A camera frame (converted to RGB) received at clock time `received_s` / perf_counter `received`;
        False (counted) if it is stamped no later than the frame held."""
        if self.buffer.add_image(camera, stamp_s, rgb):
            stored = time.perf_counter()
            self.frame_timing[camera] = (stamp_s, received_s - stamp_s, stored - received, stored)
            return True
        self.counters.faults["frames_out_of_order"] += 1
        return False

    def set_prefix(self, received_s: float, prefix: PlanPrefix | None, end_s: float | None) -> None:
        """The executor's newest plan ahead (None: it has no plan: holding, braking) and its end time."""
        with self._prefix_ready:
            self._prefix = (received_s, prefix, end_s) if prefix is not None else None
            self._prefix_seen |= prefix is not None
            self._prefix_ready.notify_all()

    def forget_plan(self) -> None:
        with self._prefix_ready:
            self._prefix, self.last_chunk_end_s = None, None

    def _wait_for_current_prefix(self, stop: threading.Event) -> None:
        """Wait (at most PREFIX_WAIT_S) until the held plan reaches the last published chunk's end, i.e. the
        executor has merged that chunk: the next chunk must continue the plan that runs, not the one the last
        chunk replaced (or no plan at all, right after the first chunk)."""
        end_s = self.last_chunk_end_s
        if end_s is None or not self._prefix_seen:
            return

        def current() -> bool:
            held = self._prefix
            return stop.is_set() or (held is not None and held[2] >= end_s - 1e-6)

        with self._prefix_ready:
            self._prefix_ready.wait_for(current, timeout=PREFIX_WAIT_S)

    def _plan_prefix(self, stamp_s: float) -> PlanPrefix | None:
        """The plan ahead, if fresh, for a chunk of the observation stamped `stamp_s`: the part before the chunk
        can take effect (the stamp + the observation-to-publish latency, p90) is committed."""
        held = self._prefix
        if held is None or self.clock() - held[0] > self.params("max_observation_age_s"):
            return None
        committed_until = stamp_s + self.snapshot_to_publish.value(default=0.0)
        return dataclasses.replace(held[1], committed_until_s=committed_until)

    # --- inference ---------------------------------------------------------------------------
    def run(self, publish, stop: threading.Event, ok: Callable[[], bool] = lambda: True) -> None:
        """While not stopped: infer as soon as every camera has a frame captured after the cycle started
        (chunks from frames as fresh as the cameras allow), then wait for the scheduler's next start."""
        while not stop.is_set() and ok():
            if not self.instruction:
                stop.wait(0.05)
                continue
            started = self.clock()
            self._wait_for_current_prefix(stop)
            # no fresh frames within max_observation_age_s: snapshot() says what is stale
            self.buffer.wait_for_frames(started, timeout_s=self.params("max_observation_age_s"))
            chunk_end = self.infer_once(publish, stop, ok)
            if chunk_end is not None:
                self.last_chunk_end_s = chunk_end
            self.scheduler.period_s = self.params("inference_period_s")
            self.scheduler.on_cycle(self.clock() - started, chunk_end)
            stop.wait(max(0.0, self.scheduler.next_start_s(started) - self.clock()))

    def infer_once(self, publish, stop: threading.Event | None = None, ok: Callable[[], bool] = lambda: True):
        """Infer and hand one chunk from the newest observation to `publish(chunk) -> (message_s, publish_s)`,
        unless it is stale. Returns the time of the published chunk's last point (None if nothing was)."""
        stop = stop or threading.Event()
        max_age = self.params("max_observation_age_s")
        try:
            obs = self.buffer.snapshot(self.clock(), max_age, self.instruction)
        except ObservationError as exc:
            self.log.warning(f"not inferring: {exc}", key="snapshot")
            return None
        woke = time.perf_counter()
        prefix = self._plan_prefix(obs.stamp_s)
        try:
            chunk = self.backend.predict(obs, prefix=prefix)
        except Exception as exc:  # noqa: BLE001 - a failing model must not stop the loop
            self.fault("backend_errors", f"backend failed, no chunk for this observation: {exc!r}")
            return None
        if isinstance(chunk, ActionChunk) and not self._count_truncation(chunk):
            return None  # the action space left no point (e.g. NaN model output): counted with the reason
        try:
            chunk = check_policy_chunk(chunk, self.backend.joint_names)
        except ChunkRejected as exc:
            self.fault("outputs_rejected", f"not publishing: {exc}")
            return None
        delay = self.params("inference_delay_s")
        if delay > 0:
            stop.wait(delay)
        age = self.clock() - obs.stamp_s
        if stop.is_set() or not ok():
            return None
        if age > max_age:
            self.fault(
                "chunks_dropped_stale",
                f"dropping chunk: its observation is {age:.3f} s old (> max_observation_age_s={max_age}): inference "
                "is too slow",
            )
            return None
        predicted = time.perf_counter()
        message_s, publish_s = publish(chunk)
        self._record_stages(obs, woke, predicted - woke, message_s, publish_s)
        counters = self.counters
        counters.published += 1
        counters.guided += prefix is not None and self.backend.supports_prefix
        counters.inference_s.append(chunk.inference_s)
        self.snapshot_to_publish.add(age)
        counters.frame_to_chunk_s.append(self.clock() - min(obs.image_stamps_s.values()))
        return float(chunk.times_s()[-1])

    def _record_stages(self, obs: Observation, woke: float, predict_s: float, message_s: float, publish_s: float):
        """Stage durations of a published chunk, from the frame that completed its observation (the last stored)."""
        timings = [self.frame_timing.get(c) for c in obs.image_stamps_s]
        if any(t is None or t[0] != obs.image_stamps_s[c] for t, c in zip(timings, obs.image_stamps_s)):
            return  # a newer frame replaced one in between: nothing to attribute
        _, receive_s, convert_s, stored = max(timings, key=lambda t: t[3])
        self.stage_times.add((receive_s, convert_s, woke - stored, predict_s, message_s, publish_s))

    def _count_truncation(self, chunk: ActionChunk) -> bool:
        """Count and log a chunk cut short by the action space; False if nothing is left to publish."""
        if not chunk.truncated_reason:
            return True
        counters = self.counters
        counters.ik_failures += chunk.ik_failed
        counters.last_truncation = chunk.truncated_reason
        if chunk.horizon == 0:
            counters.rejected += 1
            self.log.error(
                f"chunk not published: no point could be converted: {chunk.truncated_reason}", key="chunk:rejected"
            )
            return False
        counters.truncated += 1
        self.log.error(f"chunk cut to {chunk.horizon} points: {chunk.truncated_reason}", key="chunk:truncated")
        return True

    def fault(self, counter: str, text: str) -> None:
        """Count a chunk not published (or a camera gone silent) and log why."""
        self.counters.faults[counter] += 1
        self.counters.last_fault = text
        self.log.error(f"{text} ({counter}: {self.counters.faults[counter]})", key=counter)

    def diagnostics(self) -> dict[str, Any]:
        """The values /diagnostics reports (latencies in ms as text), the backend's own included."""

        def ms(values, q):
            return f"{np.percentile(np.asarray(values), q) * 1e3:.2f}" if values else "nan"

        c = self.counters
        f2c, inf = list(c.frame_to_chunk_s), list(c.inference_s)
        values = {
            "instruction": self.instruction,
            "chunks_published": c.published,
            "chunks_guided": c.guided,
            "chunks_truncated": c.truncated,
            "chunks_rejected": c.rejected,
            "ik_failures": c.ik_failures,
            "last_truncation": c.last_truncation,
            "latency_estimate_ms": f"{self.scheduler.latency.value() * 1e3:.1f}",
            "frame_to_chunk_p50_ms": ms(f2c, 50),
            "frame_to_chunk_p99_ms": ms(f2c, 99),
            "inference_p50_ms": ms(inf, 50),
            "inference_p99_ms": ms(inf, 99),
            **{f"stage_{k}_p50_ms": f"{v:.3f}" for k, v in self.stage_times.percentiles_ms(50).items()},
            **{f"stage_{k}_p99_ms": f"{v:.3f}" for k, v in self.stage_times.percentiles_ms(99).items()},
            **{k: c.faults[k] for k in FAULT_COUNTERS},
            "last_fault": c.last_fault,
        }
        if self.backend is not None:
            values.update(self.backend.diagnostics())  # e.g. a remote backend's link state and timing
        return values
