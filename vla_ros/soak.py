"""`vla-ros soak --minutes N`: the demo pipeline runs episodes continuously while faults from the
README's fault catalogue are injected at random, and reports what a long run would reveal.

The task is given once, at the start, through the policy's parameter service (as `ros2 param set` does),
and never again: every episode is one whose sim reset asks for that task (the sim alternates tasks by
seed: seeds that ask for another are skipped), so an episode after a policy restart runs only if the
restarted policy took the task over (issue 23).

Each episode gets one fault, injected from outside through the standard interfaces while the
policy runs: a second writer on `action_chunk`, a chunk stamped in the future, a 1-rad joint-state
glitch, an undecodable camera frame, an instruction flood, invalid parameter values, an e-stop and
reset, or (rarely: they reload the model) a SIGKILLed policy node that the bring-up respawns, or a
SIGSTOPped one (alive, not answering) that the lifecycle manager finds by its heartbeat and kills for
the bring-up to respawn.

Reported (one JSON line, and `soak.json` in the run folder): per fault kind the faults injected, episodes
and successes; per policy kill or stop whether the restarted policy resumed the task (its /diagnostics:
`restarts_seen`, `task_after_restart`, `instruction`) and the outcome of its next episode that sends no
task; RSS and open file descriptors of each node at the first sample after its warm-up and the last (per
process: a respawned node starts anew), tick lateness p99 per minute, limit violations of the commands
(position outside the limits, or a step faster than max_velocity, see LimitMonitor; must be 0), episodes
run, lost (the pipeline failed them: a service call failed or timed out) and timed out (no outcome within
the wall-clock timeout: the sim ran slow), the executor's holds for an unresponsive policy, and the lifecycle
manager's counts for the policy (restarts, processes found unresponsive: silent, deaf, or deaf to a camera).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.bringup import Bringup
from vla_ros.config import load_robot_config
from vla_ros.demo import Supervisor, demo_environment
from vla_ros.launch_description import node_specs
from vla_ros.nodes.chunk_executor_node import MAX_TICK_PERIODS
from vla_ros.nodes.runner import STACKS_SIGNAL

FAULTS = (
    "second_writer",
    "future_chunk",
    "joint_glitch",
    "bad_frame",
    "instruction_flood",
    "bad_params",
    "estop",
    "kill_policy",
    "stop_policy",
)
WEIGHTS = (4, 4, 4, 4, 4, 4, 4, 1, 1)
RESTARTING = ("kill_policy", "stop_policy")  # faults that end the policy process: the bring-up respawns it
SENDS_TASK = ("instruction_flood",)  # faults that publish the task (on the instruction topic): no proof of a resume
FIRST_SEED = 1000  # the first episode's seed: its task is the soak's
SEED_TRIES = 8  # seeds tried for the next episode that asks for the soak's task
RESUME_CHECK_S = 15.0  # longest wait for the restarted policy's /diagnostics to report its restart
SAMPLE_PERIOD_S = 1.0  # seconds between samples of /proc and /diagnostics
POLICY_BACK_TIMEOUT_S = 180.0  # longest wait for a killed policy to be respawned and active again
WARMUP_S = 20.0  # a process's first seconds (model load, first inferences) are not its baseline


def process_sample(pid: int) -> dict[str, int] | None:
    """RSS (kB) and open file descriptors of a process, from /proc (None if it is gone)."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return {"rss_kb": int(status["VmRSS"].split()[0]), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (FileNotFoundError, ProcessLookupError, KeyError):
        return None


class LimitMonitor:
    """Commands outside the position limits, or a step longer than max_velocity x the longest time
    one executor tick integrates (MAX_TICK_PERIODS control periods, however late the tick). A gap
    of more than 3 periods between arrivals (inactive) starts a new sequence."""

    def __init__(self, limits, period_s: float):
        self.limits, self.period_s = limits, period_s
        self.max_step = limits.max_velocity * MAX_TICK_PERIODS * period_s * 1.001 + 1e-9  # (D,) radians
        self.commands, self.violations = 0, 0
        self.examples: list[str] = []  # the first violations, in words
        self._last: tuple[float, np.ndarray] | None = None

    def on_command(self, q: np.ndarray) -> None:
        now = time.monotonic()
        self.commands += 1
        problems = []
        if np.any(q < self.limits.min_position - 1e-9) or np.any(q > self.limits.max_position + 1e-9):
            problems.append(f"position outside the limits: {np.round(q, 4).tolist()}")
        if self._last is not None and now - self._last[0] < 3 * self.period_s:
            ratio = np.abs(q - self._last[1]) / self.max_step
            if ratio.max() > 1.0:
                j = int(np.argmax(ratio))
                problems.append(f"joint {j} stepped {ratio[j]:.2f} x max_velocity x {MAX_TICK_PERIODS} periods")
        if problems:
            self.violations += 1
            self.examples += problems[: max(0, 10 - len(self.examples))]
        self._last = (now, q)


class FaultInjector:
    """Injects one fault through ROS topics and services (from the supervisor's node)."""

    def __init__(self, sup: Supervisor, bringup: Bringup, joint_names: tuple[str, ...], rng: random.Random):
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        self.sup, self.bringup, self.joints, self.rng = sup, bringup, joint_names, rng
        n = sup.node
        self.chunk_pub = n.create_publisher(JointTrajectory, "action_chunk", 10)
        self.js_pub = n.create_publisher(JointState, "joint_states", 10)
        self.img_pub = n.create_publisher(Image, "camera/image_raw", 2)
        self.instr_pub = n.create_publisher(String, "instruction", 100)
        self.last_js: JointState | None = None
        n.create_subscription(JointState, "joint_states", lambda m: setattr(self, "last_js", m), 10)
        sup.clients["estop"] = n.create_client(Trigger, "/vla_chunk_executor/estop")
        sup.clients["reset_estop"] = n.create_client(Trigger, "/vla_chunk_executor/reset_estop")
        self.injected: dict[str, int] = {}

    def inject(self, fault: str, instruction: str) -> None:
        self.injected[fault] = self.injected.get(fault, 0) + 1
        getattr(self, f"_{fault}")(instruction)

    def _chunk(self, stamp, positions: np.ndarray):
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        from vla_ros.nodes.conversions import s_to_duration

        msg = JointTrajectory(joint_names=list(self.joints))
        msg.header.stamp = stamp
        msg.points = [
            JointTrajectoryPoint(positions=p.tolist(), time_from_start=s_to_duration(0.1 * (i + 1)))
            for i, p in enumerate(positions)
        ]
        return msg

    def _here(self) -> np.ndarray:
        js = self.last_js
        if js is None:
            return np.zeros(len(self.joints))
        by_name = dict(zip(js.name, js.position))
        return np.array([by_name.get(j, 0.0) for j in self.joints])

    def _second_writer(self, _instruction: str) -> None:
        for _ in range(5):
            self.chunk_pub.publish(
                self._chunk(self.sup.node.get_clock().now().to_msg(), np.repeat(self._here()[None], 5, 0))
            )
            time.sleep(0.1)

    def _future_chunk(self, _instruction: str) -> None:
        from vla_ros.nodes.conversions import s_to_stamp

        self.chunk_pub.publish(self._chunk(s_to_stamp(self.sup._now() + 5.0), np.repeat(self._here()[None], 5, 0)))

    def _joint_glitch(self, _instruction: str) -> None:
        js = self.last_js
        if js is not None:
            js.position = [p + (1.0 if i == 0 else 0.0) for i, p in enumerate(js.position)]
            js.header.stamp = self.sup.node.get_clock().now().to_msg()
            self.js_pub.publish(js)

    def _bad_frame(self, _instruction: str) -> None:
        from sensor_msgs.msg import Image

        msg = Image(height=4, width=4, encoding="32FC1", step=16, data=bytes(64))
        msg.header.stamp = self.sup.node.get_clock().now().to_msg()
        self.img_pub.publish(msg)

    def _instruction_flood(self, instruction: str) -> None:
        from std_msgs.msg import String

        for i in range(50):
            self.instr_pub.publish(String(data=instruction if i % 2 else instruction + " "))
            time.sleep(0.01)
        self.instr_pub.publish(String(data=instruction))

    def _bad_params(self, _instruction: str) -> None:
        for name, value in (("max_observation_age_s", -1.0), ("inference_period_s", 0.0), ("instruction", "")):
            try:
                self.sup.set_parameter("policy_params", name, value)
            except RuntimeError:
                pass  # rejected, as it must be
            else:
                raise RuntimeError(f"invalid {name}={value!r} was accepted")

    def _estop(self, _instruction: str) -> None:
        self.sup.trigger("estop")
        time.sleep(0.3)
        self.sup.trigger("reset_estop")

    def _kill_policy(self, _instruction: str) -> None:
        os.kill(self.bringup.procs["vla_policy"].pid, signal.SIGKILL)

    def _stop_policy(self, _instruction: str) -> None:
        """Alive but not answering: its heartbeat stops; the lifecycle manager (liveness_timeout_s) kills it."""
        os.kill(self.bringup.procs["vla_policy"].pid, signal.SIGSTOP)


def run_soak(
    minutes: float,
    run_dir: Path | None = None,
    seed: int = 0,
    episode_timeout_s: float = 10.0,
    transport: str = "default",
    faults: tuple[str, ...] = FAULTS,
    domain_id: int | None = None,
    log=print,
) -> dict:
    """Run the soak for `minutes` (SIGINT / SIGTERM end it early, with the report); return (and write to
    run_dir/soak.json) the report. `transport`: "default" (Fast DDS's shared memory + UDP) or "udp";
    `faults`: the faults drawn from (with their relative weights in `WEIGHTS`); `domain_id`: the
    ROS_DOMAIN_ID of the run (default: one from the process id)."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        raise ValueError(f"soak faults: unknown {unknown} (known: {list(FAULTS)})")
    weights = [w for f, w in zip(FAULTS, WEIGHTS) if f in faults]
    faults = tuple(f for f in FAULTS if f in faults)
    from std_msgs.msg import Float64MultiArray

    run_dir = Path(run_dir or Path("runs") / time.strftime("soak-%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = demo_environment(run_dir, 40 + os.getpid() % 50 if domain_id is None else domain_id)
    if transport == "udp":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
    os.environ.update(env)
    robot = load_robot_config("sim")
    specs = node_specs(  # respawn: the manager kills an unresponsive node for the bring-up to replace
        "sim", use_sim=True, overrides={"vla_sim_robot": {"max_episode_s": episode_timeout_s}}, respawn=True
    )
    period_s = 1.0 / specs_parameter(specs, "vla_chunk_executor", "control_rate_hz", 100.0)
    rng = random.Random(seed)
    monitor = LimitMonitor(robot.limits, period_s)
    samples: dict[str, list[tuple[float, int, dict]]] = {}  # node -> (t, pid, sample)
    lateness: list[tuple[float, float]] = []  # (t, executor tick lateness p99 ms)
    tally = Tally()
    started = time.monotonic()
    with Bringup(specs, log_dir=run_dir / "logs", env=env, respawn=True) as bringup:
        sup = Supervisor()
        ended = threading.Event()  # a stop signal: finish the episode, then report
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: ended.set())
        sup.node.create_subscription(
            Float64MultiArray, "commands", lambda m: monitor.on_command(np.asarray(m.data)), 100
        )
        injector = FaultInjector(sup, bringup, robot.joint_names, rng)
        stop = threading.Event()

        def sample_loop():
            while not stop.wait(SAMPLE_PERIOD_S):
                t = time.monotonic() - started
                for name, proc in list(bringup.procs.items()):
                    s = process_sample(proc.pid)
                    if s is not None:
                        samples.setdefault(name, []).append((t, proc.pid, s))
                executor = _executor_diagnostics(sup)
                if "tick_lateness_p99_ms" in executor:
                    lateness.append((t, float(executor["tick_lateness_p99_ms"])))

        try:
            sup.wait_for_services(120.0)
            sup.wait_until_active(180.0)
            from vla_ros.sim.tabletop import task_for_episode

            seed = FIRST_SEED
            task = task_for_episode(seed).instruction
            sup.set_parameter("policy_params", "instruction", task)  # once: no episode sends it again
            log(f"task for the whole soak: '{task}' (set once through /vla_policy/set_parameters)")
            threading.Thread(target=sample_loop, daemon=True).start()
            while time.monotonic() - started < minutes * 60 and not ended.is_set():
                fault = rng.choices(faults, weights)[0]
                seed = _run_one(sup, injector, fault, seed, task, episode_timeout_s, tally, log) + 1
                if fault in RESTARTING:  # the bring-up respawns it, the manager brings it up
                    if not _after_restart(sup, bringup, fault, task, tally, log):
                        ended.set()  # the soak ends with its report
        finally:
            stop.set()
            sup.close()
    report = _report(
        minutes,
        tally,
        monitor,
        samples,
        lateness,
        injector.injected,
        dict(bringup.restarts),
        int(_executor_diagnostics(sup).get("policy_unresponsive", 0)),
        _manager_diagnostics(sup),
    )
    report["run_dir"] = str(run_dir)
    report["transport"] = transport
    report["ended_early"] = ended.is_set()
    (run_dir / "soak.json").write_text(json.dumps(report, indent=1))
    return report


@dataclass
class Tally:
    """What the episodes did: totals, per fault kind (`per_fault`: fault -> episodes, successes, lost) and, per
    policy restart (a kill or stop), whether the new process resumed the task (`restarts`)."""

    episodes: int = 0
    successes: int = 0
    lost: int = 0
    interrupted: int = 0  # by a policy kill or stop
    timed_out: int = 0
    per_fault: dict[str, dict[str, int]] = field(default_factory=dict)
    restarts: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, fault: str, outcome: str) -> None:
        """One episode with `fault` and its outcome: 'success', 'failure', 'lost' or 'interrupted'."""
        row = self.per_fault.setdefault(fault, {"episodes": 0, "successes": 0, "lost": 0})
        self.episodes += 1
        row["episodes"] += 1
        row["successes"] += outcome == "success"
        row["lost"] += outcome == "lost"
        self.successes += outcome == "success"
        self.lost += outcome == "lost"
        self.interrupted += outcome == "interrupted"
        if self.restarts and self.restarts[-1]["next_episode"] is None and fault not in RESTARTING + SENDS_TASK:
            self.restarts[-1]["next_episode"] = outcome  # the restarted policy's first whole episode with its own task


def _seed_for(task: str, seed: int) -> int:
    """The first episode seed from `seed` on whose sim episode asks for `task` (the sim alternates its tasks by
    seed), at most SEED_TRIES on."""
    from vla_ros.sim.tabletop import task_for_episode

    for s in range(seed, seed + SEED_TRIES):
        if task_for_episode(s).instruction == task:
            return s
    raise RuntimeError(f"no sim episode seed in {seed}..{seed + SEED_TRIES - 1} asks for '{task}'")


def _episode(sup: Supervisor, seed: int, task: str, timeout_s: float) -> tuple[str, float, int]:
    """One episode of `task` from the first seed >= `seed` that asks for it, the instruction NOT sent again
    (the policy holds it): (sim outcome, duration in seconds, the seed run)."""
    seed = _seed_for(task, seed)
    _, asked, duration = sup.run_episode(seed, timeout_s, record=False, send_instruction=False)
    if asked != task:
        raise RuntimeError(f"episode seed {seed} asked for '{asked}', not the soak's task '{task}'")
    return sup.outcome, duration, seed


def _run_one(sup, injector, fault: str, seed: int, task: str, episode_timeout_s: float, tally: Tally, log) -> int:
    """One episode with `fault` injected 0.5-2 s into it, counted in `tally`; the seed it ran."""
    timer = threading.Timer(injector.rng.uniform(0.5, 2.0), lambda: _inject(injector, fault, task, tally.errors))
    timer.start()
    try:
        outcome, duration, seed = _episode(sup, seed, task, episode_timeout_s + 1.0)
        tally.timed_out += outcome != "success" and duration > episode_timeout_s  # the sim ran slower than the clock
        result = "success" if outcome == "success" else "failure"
        log(f"episode {tally.episodes + 1} seed {seed} fault {fault}: {outcome} ({duration:.1f} s)")
    except (RuntimeError, TimeoutError) as exc:
        result = "interrupted" if fault in RESTARTING else "lost"
        if result == "lost":
            tally.errors.append(f"episode {tally.episodes + 1} ({fault}): {exc}")
        log(f"episode {tally.episodes + 1} seed {seed} fault {fault}: {result} ({exc})")
    finally:
        timer.join()
    tally.count(fault, result)
    return seed


def _after_restart(sup: Supervisor, bringup: Bringup, fault: str, task: str, tally: Tally, log) -> bool:
    """After a policy kill or stop: wait for the new process, record whether it resumed `task` (tally.restarts);
    False if no policy came back (the soak ends)."""
    t0 = time.monotonic()
    error, back = _revive_policy(sup, bringup)
    if error is not None:
        tally.lost += 1
        tally.errors.append(f"episode {tally.episodes}: {error}")
        log(tally.errors[-1])
    if back:
        row = {"episode": tally.episodes, "fault": fault, "back_s": round(time.monotonic() - t0, 2)}
        seen_before = tally.restarts[-1]["restarts_seen"] if tally.restarts else 0
        row |= _resumed(sup, task, seen_before)
        row["next_episode"] = None
        tally.restarts.append(row)
        log(f"after {fault}: {row}")
    return back


def _resumed(sup: Supervisor, task: str, seen_before: int) -> dict:
    """Whether the restarted policy took `task` over, from its /diagnostics: the first process reporting more
    restarts seen than `seen_before` (the count before this restart), waited for at most RESUME_CHECK_S."""
    deadline = time.monotonic() + RESUME_CHECK_S
    diag: dict[str, str] = {}
    while time.monotonic() < deadline:
        diag = sup.diagnostics.get("vla_policy: policy", {})
        if _restarts_seen(diag) > seen_before:
            break
        time.sleep(0.2)
    after = diag.get("task_after_restart", "")
    return {
        "restarts_seen": _restarts_seen(diag),
        "task_after_restart": after,
        "resumed": _restarts_seen(diag) > seen_before
        and diag.get("instruction") == task
        and f"resumed '{task}'" in after,
    }


def _restarts_seen(diag: dict[str, str]) -> int:
    value = diag.get("restarts_seen", "0")
    return int(value) if value.isdigit() else 0


def _executor_diagnostics(sup: Supervisor) -> dict[str, str]:
    return next((v for k, v in sup.diagnostics.items() if k.endswith(": executor")), {})


def _manager_diagnostics(sup: Supervisor) -> dict[str, str]:
    """The lifecycle manager's last counts for the policy: restarts it brought up, processes it found
    unresponsive (silent, deaf, or deaf to a camera), camera topics the policy is deaf to now."""
    values = next((v for k, v in sup.diagnostics.items() if k.endswith(": lifecycle")), {})
    keys = ("restarts", "unresponsive", "deaf_topics")
    return {k: values[f"vla_policy.{k}"] for k in keys if f"vla_policy.{k}" in values}


def _revive_policy(sup: Supervisor, bringup: Bringup) -> tuple[str | None, bool]:
    """Wait for the respawned policy: (error or None, whether it is active again). One that does not
    answer within POLICY_BACK_TIMEOUT_S gets STACKS_SIGNAL (its threads' Python stacks go to its log)
    and SIGKILL, and its own respawn gets the same wait."""
    try:
        _wait_policy_back(sup, POLICY_BACK_TIMEOUT_S)
        return None, True
    except TimeoutError as exc:
        first = f"the respawned policy did not answer ({exc})"
    proc = bringup.procs["vla_policy"]
    if proc.poll() is None:
        os.kill(proc.pid, STACKS_SIGNAL)
        time.sleep(1.0)  # the dump is written before the kill
        os.kill(proc.pid, signal.SIGKILL)
        first += f"; its stacks are in logs/vla_policy.log (pid {proc.pid}); killed it"
    try:
        _wait_policy_back(sup, POLICY_BACK_TIMEOUT_S)
        return f"{first}; its respawn came back", True
    except TimeoutError as exc:
        return f"{first}; its respawn did not come back either ({exc})", False


def _wait_policy_back(sup: Supervisor, timeout_s: float) -> None:
    """Until the respawned policy is active again. The lifecycle manager activates it; a deactivate
    that this supervisor sent to the dying process may still reach the new one (seen in a 15-minute
    soak), so an inactive policy is activated again here."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sup.wait_until_active(5.0)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
        try:
            sup.set_active("policy_state", True)
        except (RuntimeError, TimeoutError):
            pass  # still starting


def _inject(injector: FaultInjector, fault: str, task: str, errors: list[str]) -> None:
    try:
        injector.inject(fault, task)
    except Exception as exc:  # noqa: BLE001 - a failed injection is reported, not fatal
        errors.append(f"injecting {fault}: {exc!r}")


def specs_parameter(specs, node: str, name: str, default):
    return next((s.parameters.get(name, default) for s in specs if s.name == node), default)


def _report(
    minutes, tally: Tally, monitor, samples, lateness, injected, restarts, policy_holds: int, manager: dict
) -> dict:
    """The soak's report (see the module docstring); `policy_holds`: the executor's holds for an unresponsive
    policy; `manager`: the lifecycle manager's counts for the policy (`_manager_diagnostics`)."""
    nodes = {}
    for name, rows in samples.items():
        # per process, the samples after its warm-up (model load); a node is judged on its process
        # with the most of them, so a process respawned just before the end is not taken for growth
        born: dict[int, float] = {}
        for t, p, _ in rows:
            born.setdefault(p, t)
        settled = {p: [s for t, q, s in rows if q == p and t >= born[p] + WARMUP_S] for p in born}
        pid = max(settled, key=lambda p: (len(settled[p]), born[p]))
        own = settled[pid]
        if not own:  # every process was killed within its warm-up: nothing to judge growth on
            nodes[name] = {"rss_mb": None, "rss_growth_pct": None, "fds": None, "samples": 0}
            continue
        first, last = own[0], own[-1]
        nodes[name] = {
            "rss_mb": [round(first["rss_kb"] / 1024, 1), round(last["rss_kb"] / 1024, 1)],
            "rss_growth_pct": round(100 * (last["rss_kb"] - first["rss_kb"]) / first["rss_kb"], 2),
            "fds": [first["fds"], last["fds"]],
            "samples": len(own),
        }
    per_minute: dict[int, list[float]] = {}
    for t, p99 in lateness:
        per_minute.setdefault(int(t // 60), []).append(p99)
    resumed = sum(r["resumed"] for r in tally.restarts)
    return {
        "minutes": minutes,
        "episodes": tally.episodes,
        "successes": tally.successes,
        "lost_episodes": tally.lost,
        "episodes_interrupted_by_a_kill": tally.interrupted,
        "episodes_timed_out": tally.timed_out,
        "limit_violations": monitor.violations,
        "commands_checked": monitor.commands,
        "violation_examples": monitor.examples,
        "faults_injected": injected,
        "per_fault": {
            f: {"injected": injected.get(f, 0), **tally.per_fault.get(f, {"episodes": 0, "successes": 0, "lost": 0})}
            for f in sorted(set(injected) | set(tally.per_fault))
        },
        "policy_restarts_checked": len(tally.restarts),
        "task_resumed_after_restart": resumed,
        "restarts_detail": tally.restarts,
        "executor_policy_holds": policy_holds,
        "manager_policy": manager,
        "restarts": restarts,
        "nodes": nodes,
        "tick_lateness_p99_ms_per_minute": {m: round(max(v), 3) for m, v in sorted(per_minute.items())},
        "errors": tally.errors[:20],
    }
