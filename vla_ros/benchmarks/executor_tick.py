"""CPU per control tick and smoothness of the chunk executor core, without ROS.

    python -m vla_ros.benchmarks.executor_tick [--rate 500] [--policy expert|demo] [--delay 0.2]
        [--blend replace] [--episodes 2] [--repeats 5] [--profile]

1. Records a realistic chunk stream: the sim arm in closed loop with the executor at `--rate`
   Hz, the policy (the scripted expert, or the bundled demo model on rendered camera images)
   observing every 0.3 s and its chunk arriving `--delay` seconds after the observation.
2. Replays that stream into fresh ExecutorCores (the sim arm's limits, margin and workspace
   check) `--repeats` times, the arm following its commands, and times every tick with the
   thread's CPU clock. Prints CPU per tick p50 / p99 / max in microseconds: the minimum over
   the repeats of each run's figure (the machine may be shared: the least disturbed run), and
   the same percentiles of each tick's minimum over the repeats (the replay is deterministic,
   so that is the tick's own cost with the other processes' interference mostly removed). Then
   the commanded jerk (rad/s^3) from the commanded accelerations as `vla-ros plot` computes it,
   the largest third difference of the commanded positions, and the largest deviation of the
   commands from the chunks' points interpolated in time (rad).

A benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from dataclasses import dataclass

import numpy as np

from vla_ros.config import load_robot_config
from vla_ros.core.executor import ExecutorCore
from vla_ros.core.types import ActionChunk, PlanPrefix
from vla_ros.evaluation import ExpertBackend, observe, sim_policy
from vla_ros.executor_setup import executor_from_parameters
from vla_ros.launch_description import executor_parameters
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import JOINT_NAMES, TabletopSim, task_for_episode

OBSERVATION_PERIOD_S = 0.3


@dataclass(frozen=True)
class Stream:
    """What the executor received: chunks (arrival time s, chunk), tick times (T,) s, start joints (D,)."""

    chunks: list[tuple[float, ActionChunk]]
    tick_times_s: np.ndarray
    start_q: np.ndarray
    success: bool


def make_core(blend: str) -> ExecutorCore:
    """The executor core exactly as the node builds it from the sim robot config, activated."""
    core = executor_from_parameters({**executor_parameters(load_robot_config("sim")), "blend_mode": blend})
    core.activate()
    return core


def make_backend(name: str, sim: TabletopSim):
    """The scripted expert (`expert`) or the bundled demo model."""
    if name == "expert":
        return ExpertBackend(sim)
    from vla_ros.backends.base import load_backend

    return load_backend("octo", resolve_package_path("models/demo"))


def record(
    policy_name: str, seed: int, rate_hz: float, delay_s: float, blend: str, max_episode_s: float = 8.0
) -> Stream:
    """One closed-loop episode in the sim: the chunk stream the executor received."""
    sim = TabletopSim(image_size=(64, 64))
    task = sim.reset(seed, task_for_episode(seed))
    dt = 1.0 / rate_hz
    policy = sim_policy(make_backend(policy_name, sim), task.instruction, clock=lambda: tick * dt)
    core = make_core(blend)
    start_q = sim.joint_positions()
    core.on_joint_state(0.0, start_q)
    pending: list[tuple[float, ActionChunk]] = []
    received: list[tuple[float, ActionChunk]] = []
    times: list[float] = []
    next_obs_s, tick = 0.0, 0
    while sim.outcome == "running" and tick * dt < max_episode_s:
        now = tick * dt
        if now >= next_obs_s - 1e-9:
            observe(policy, sim, now)
            ahead = core.plan_ahead(now) if blend == "guided" else None
            prefix = PlanPrefix(*ahead, JOINT_NAMES, committed_until_s=now) if ahead is not None else None
            policy.set_prefix(now, prefix, float(ahead[0][-1]) if ahead is not None else None)
            policy.snapshot_to_publish.add(delay_s)  # the chunk arrives delay_s after its observation
            policy.infer_once(lambda chunk, at=now + delay_s: pending.append((at, chunk)) or (0.0, 0.0))
            next_obs_s = now + OBSERVATION_PERIOD_S
        while pending and pending[0][0] <= now + 1e-9:
            arrival, chunk = pending.pop(0)
            core.on_chunk(chunk, now)
            received.append((now, chunk))
        core.on_joint_state(now, sim.joint_positions())
        command = core.tick(now)
        times.append(now)
        if command.positions is not None:
            sim.set_command(command.positions)
        sim.advance(dt)
        tick += 1
    sim.close()
    return Stream(received, np.array(times), start_q, sim.outcome == "success")


def save_streams(path: str, streams: list[Stream]) -> None:
    """Write recorded streams to an .npz (plain arrays; the chunks' points concatenated, with their counts)."""
    arrays = {}
    for i, s in enumerate(streams):
        arrays[f"ep{i}_arrival_s"] = np.array([a for a, _ in s.chunks])
        arrays[f"ep{i}_t0_s"] = np.array([c.t0_s for _, c in s.chunks])
        arrays[f"ep{i}_dt_s"] = np.array([c.dt_s for _, c in s.chunks])
        arrays[f"ep{i}_points"] = np.array([len(c.positions) for _, c in s.chunks])
        arrays[f"ep{i}_positions"] = np.concatenate([c.positions for _, c in s.chunks])
        arrays[f"ep{i}_tick_times_s"], arrays[f"ep{i}_start_q"] = s.tick_times_s, s.start_q
        arrays[f"ep{i}_success"] = np.array(s.success)
    np.savez_compressed(path, **arrays)


def load_streams(path: str) -> list[Stream]:
    """Streams written by `save_streams` (no pickle)."""
    data = np.load(path, allow_pickle=False)
    streams = []
    for i in range(sum(k.endswith("_success") for k in data.files)):
        positions = np.split(data[f"ep{i}_positions"], np.cumsum(data[f"ep{i}_points"])[:-1])
        chunks = [
            (float(a), ActionChunk(float(t), float(d), JOINT_NAMES, p))
            for a, t, d, p in zip(data[f"ep{i}_arrival_s"], data[f"ep{i}_t0_s"], data[f"ep{i}_dt_s"], positions)
        ]
        streams.append(
            Stream(chunks, data[f"ep{i}_tick_times_s"], data[f"ep{i}_start_q"], bool(data[f"ep{i}_success"]))
        )
    return streams


def replay(stream: Stream, blend: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Tick CPU times (T,) seconds, commands (T, D), commanded accelerations (T, D) and the largest
    deviation (rad) of a tracking command from the chunks' points interpolated."""
    core = make_core(blend)
    core.on_joint_state(0.0, stream.start_q)
    chunks = list(stream.chunks)
    cpu = np.empty(stream.tick_times_s.size)
    commands = np.empty((stream.tick_times_s.size, stream.start_q.size))
    accelerations = np.empty_like(commands)
    clock = time.thread_time_ns
    interpolated = getattr(core.plan, "interpolated", core.plan.sample)  # (before smoothing plans: the plan itself)
    deviation = 0.0
    for k, now in enumerate(stream.tick_times_s):
        while chunks and chunks[0][0] <= now:
            core.on_chunk(chunks.pop(0)[1], now)
        core.on_joint_state(now, core.limiter.position)
        start = clock()
        command = core.tick(now)
        cpu[k] = (clock() - start) * 1e-9
        commands[k] = command.positions
        accelerations[k] = core.limiter.acceleration
        if command.state == "tracking":
            deviation = max(deviation, float(np.abs(command.positions - interpolated(now)).max()))
    return cpu, commands, accelerations, deviation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="control rate, Hz")
    parser.add_argument("--policy", choices=("expert", "demo"), default="expert")
    parser.add_argument("--delay", type=float, default=0.0, help="inference delay, seconds")
    parser.add_argument("--blend", default="replace")
    parser.add_argument("--episodes", type=int, default=2, help="seeds 1000, 1001, ...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one replay: top entries by own time")
    parser.add_argument("--save", default="", help="write the recorded streams to this .npz")
    parser.add_argument("--load", default="", help="replay streams from this .npz instead of recording")
    args = parser.parse_args(argv)
    if args.load:
        streams = load_streams(args.load)
    else:
        streams = [record(args.policy, 1000 + i, args.rate, args.delay, args.blend) for i in range(args.episodes)]
    if args.save:
        save_streams(args.save, streams)
    dt = 1.0 / args.rate
    runs, jerks, third, per_tick, deviations = [], [], [], [], []
    for repeat in range(args.repeats):
        cpu_all = []
        for stream in streams:
            cpu, commands, acc, deviation = replay(stream, args.blend)
            cpu_all.append(cpu)
            if repeat == 0:
                deviations.append(deviation)
                jerks.append(np.diff(acc, axis=0) / dt)
                third.append(np.abs(np.diff(commands, n=3, axis=0)).max() / dt**3)
        cpu = np.concatenate(cpu_all) * 1e6
        per_tick.append(cpu)
        runs.append((np.percentile(cpu, 50), np.percentile(cpu, 99), cpu.max()))
    best = np.min(np.array(runs), axis=0)
    tick_min = np.min(per_tick, axis=0)
    jerk = np.concatenate(jerks)
    ticks = sum(s.tick_times_s.size for s in streams)
    print(
        f"policy {args.policy}, {args.rate:.0f} Hz, delay {args.delay * 1e3:.0f} ms, blend {args.blend}: "
        f"{len(streams)} episodes, {ticks} ticks, {sum(len(s.chunks) for s in streams)} chunks, "
        f"success {np.mean([s.success for s in streams]):.2f}"
    )
    print(
        f"CPU per tick p50 / p99 / max (us), min over {args.repeats} runs: {best[0]:.1f} / {best[1]:.1f} / "
        f"{best[2]:.1f}"
    )
    print(
        f"  (per run p99: {' '.join(f'{r[1]:.0f}' for r in runs)}); each tick's minimum over the runs, p50 / p99 / "
        "max: "
        f"{np.percentile(tick_min, 50):.1f} / {np.percentile(tick_min, 99):.1f} / {tick_min.max():.1f}"
    )
    print(
        f"commanded jerk max / RMS (rad/s^3): {np.abs(jerk).max():.1f} / {np.sqrt(np.mean(jerk**2)):.2f}; "
        f"max third difference of commands / dt^3: {max(third):.1f}; "
        f"max deviation from the chunks' points interpolated: {max(deviations):.4f} rad"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for stream in streams:
            replay(stream, args.blend)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
