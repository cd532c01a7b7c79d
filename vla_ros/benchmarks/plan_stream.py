"""Executor CPU per second of robot time: a command per tick at 100 / 500 Hz against plan streaming.

    python -m vla_ros.benchmarks.plan_stream [--run runs/<demo>/executor_run.npz] [--seconds 10] [--runs 3]

A chunk stream (the chunks of a recorded executor run, e.g. the demo's `executor_run.npz`, at the
times they were received; without `--run`, one closed-loop episode of the scripted expert in the sim,
chunks arriving 0.2 s after their observation) is replayed in real time into fresh ExecutorCores built
as the node builds them for the sim arm (limits, margin, workspace), the arm following its commands,
and each command is built and published as the node does (rclpy + Fast DDS, one subscriber process
on this host):

  position_array @ 100, 500, 1000 Hz   a Float64MultiArray every tick
  joint_trajectory @ 100, 500 Hz        a one-point JointTrajectory every tick
  joint_trajectory_plan (100 Hz tick)   a JointTrajectory per change (core/plan_stream.py)

CPU is the replaying thread's CPU time (ticks, chunks, plans, messages, publishing) per second of robot
time, one markdown row per setting and run, then per setting the min / median / max over the runs. For
the plan stream it also reports the plans sent, their waypoints, the time computing one took, and the
worst ratio to each limit of the commands a JointTrajectoryController (the core/jtc.py model, 1 kHz)
makes of them. Last, the same ratios for `bypass_executor`: the chunks themselves sent to a JTC with
positions_upsampling at their arrival times (open loop: the recorded chunks were made while the executor
moved the arm). A benchmark, not a test: the CPU numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vla_ros.config import load_robot_config
from vla_ros.core.jtc import NS, JtcModel, TimedTrajectory, s_to_ns
from vla_ros.core.types import ActionChunk
from vla_ros.executor_setup import executor_from_parameters
from vla_ros.launch_description import executor_parameters

TOPIC = "plan_stream_bench_commands"
SETTINGS = (
    ("position_array", 100.0),
    ("position_array", 500.0),
    ("position_array", 1000.0),
    ("joint_trajectory", 100.0),
    ("joint_trajectory", 500.0),
    ("joint_trajectory_plan", 100.0),
)


def _subscriber(kind: str, seconds: float) -> None:
    import rclpy

    from vla_ros.nodes.conversions import COMMAND_TYPES

    rclpy.init()
    node = rclpy.create_node("plan_stream_bench_subscriber")
    node.create_subscription(COMMAND_TYPES[kind], TOPIC, lambda _msg: None, 10)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, Exception):  # terminated by the benchmark
        pass


def chunks_from_run(path: str) -> tuple[list[tuple[float, ActionChunk]], np.ndarray]:
    """(arrival s, chunk) of a recorded executor run (vla_ros.core.run_log) and its first measured joints."""
    data = np.load(path, allow_pickle=False)
    names = tuple(str(n) for n in data["joint_names"])
    ids, times, positions = data["chunk_id"], data["chunk_t"], data["chunk_q"]
    out = []
    for i, arrival in enumerate(data["switch_t"]):
        t, q = times[ids == i], positions[ids == i]
        if len(t) == 0:
            continue
        dt = float(np.diff(t).min()) if len(t) > 1 else 0.1
        t0 = float(t[0]) - dt  # the record keeps point times, not stamps: any stamp before the first point
        out.append((float(arrival), ActionChunk(t0, dt, names, q, offsets_s=t - t0)))
    return out, data["measured_q"][0]


def chunks_from_expert() -> tuple[list[tuple[float, ActionChunk]], np.ndarray]:
    from vla_ros.benchmarks.executor_tick import record

    stream = record("expert", 1000, 100.0, 0.2, "replace")
    return list(stream.chunks), stream.start_q


def replay(chunks, start_q, kind: str, rate_hz: float, seconds: float, publisher, message) -> dict:
    """Replay `chunks` in real time for `seconds` with `kind` at `rate_hz`; thread CPU and what was sent."""
    from vla_ros.nodes.conversions import s_to_stamp

    params = {**executor_parameters(load_robot_config("sim")), "output": kind, "control_rate_hz": rate_hz}
    core = executor_from_parameters(params)
    core.activate()
    t_first = chunks[0][0] - 0.05
    core.on_joint_state(t_first, start_q)
    pending = [c for c in chunks if c[0] < t_first + seconds]
    period = 1.0 / rate_hz
    plans, late = [], 0
    cpu = 0.0
    mono0 = time.monotonic()
    for k in range(1, int(seconds * rate_hz) + 1):
        deadline = mono0 + k * period
        time.sleep(max(deadline - time.monotonic(), 0.0))
        start = time.thread_time()
        now = t_first + k * period
        while pending and pending[0][0] <= now:
            try:
                core.on_chunk(pending.pop(0)[1], now)
            except ValueError:
                pass
            plans += send(core, publisher, t_first + time.monotonic() - mono0)
        core.on_joint_state(now, core.limiter.position)
        command = core.tick(now)
        if core.stream is None:
            if command.positions is not None:
                stamp = s_to_stamp(now)  # the tick's time, as the node stamps a command
                publisher.publish(message(kind, core.joint_names, command.positions, stamp, period, command.velocities))
        else:
            plans += send(core, publisher, t_first + time.monotonic() - mono0)
        cpu += time.thread_time() - start
    if core.stream is not None:
        late = sum(1 for p in plans if p[2] > p[1] - 1e-3)
    return {"cpu_s": cpu, "seconds": seconds, "plans": plans, "late": late, "core": core}


def send(core, publisher, now_s: float) -> list:
    """Publish the plan the core has, if any: [(trajectory, join s, published at now_s: the replay's ROS time
    at the moment of publishing, computation included)]."""
    out = core.take_plan()
    if out is None:
        return []
    from vla_ros.nodes.conversions import timed_trajectory_message

    publisher.publish(timed_trajectory_message(out[0]))
    return [(out[0], out[1], now_s)]


def jtc_ratios(plans, start_q, limits) -> np.ndarray:
    """Worst |finite difference| / limit of velocity, acceleration, jerk (3,) of the 1 kHz commands a
    JointTrajectoryController makes of the plans (each received when it was published)."""
    jtc = JtcModel(limits.names, start_q)
    t = s_to_ns(plans[0][2]) - 10_000_000
    jtc.update(t)
    commands = []
    for trajectory, _, sent_s in plans:
        while t + 1_000_000 < s_to_ns(sent_s):
            t += 1_000_000
            commands.append(jtc.update(t)[0])
        if not jtc.receive(trajectory, s_to_ns(sent_s)):
            raise RuntimeError(f"the JTC model rejected a plan: {jtc.rejected[-1]}")
    commands.extend(jtc.update_many(t + 1_000_000 * np.arange(1, 3000)))
    return limit_ratios(np.array(commands), limits)


def limit_ratios(q: np.ndarray, limits) -> np.ndarray:
    """Worst |finite difference| / limit of velocity, acceleration, jerk (3,) of positions q (S, D) 1 ms apart."""
    bounds = (limits.max_velocity, limits.max_acceleration, limits.max_jerk)
    return np.array([(np.abs(np.diff(q, n, axis=0)) / 1e-3**n / b).max() for n, b in zip((1, 2, 3), bounds)])


def bypass_commands(chunks, start_q, names: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """The 1 kHz commanded positions (S, D) of a JointTrajectoryController with positions_upsampling
    (core/jtc.py) receiving the chunks themselves at their arrival times (bypass_executor: no executor), and
    how many it rejected. Open loop: the recorded chunks, made while the executor moved the arm."""
    jtc = JtcModel(names, start_q, positions_upsampling=True)
    t = s_to_ns(chunks[0][0]) - 10_000_000
    commands, rejected = [], 0
    for arrival, chunk in chunks:
        while t + 1_000_000 < s_to_ns(arrival):
            t += 1_000_000
            commands.append(jtc.update(t)[0])
        offsets = np.round((chunk.times_s() - chunk.t0_s) * NS).astype(np.int64)
        message = TimedTrajectory(s_to_ns(chunk.t0_s), tuple(chunk.joint_names), offsets, np.asarray(chunk.positions))
        rejected += not jtc.receive(message, s_to_ns(arrival))
    commands.extend(jtc.update(t + 1_000_000 * k)[0] for k in range(1, 2000))
    return np.array(commands), rejected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="", help="executor_run.npz whose chunks to replay (default: the expert)")
    parser.add_argument("--seconds", type=float, default=10.0, help="robot time replayed per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--subscriber", nargs=2, metavar=("KIND", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber:
        _subscriber(args.subscriber[0], float(args.subscriber[1]))
        return 0
    import rclpy

    from vla_ros.nodes.conversions import COMMAND_TYPES, command_message

    chunks, start_q = chunks_from_run(args.run) if args.run else chunks_from_expert()
    span = chunks[-1][0] - chunks[0][0]
    seconds = min(args.seconds, span + 1.0)
    source = Path(args.run).name if args.run else "expert, seed 1000"
    print(f"chunks: {len(chunks)} over {span:.1f} s ({source}); replaying {seconds:.1f} s per run")
    columns = (
        "setting",
        "run",
        "CPU per robot second (ms)",
        "messages",
        "plan waypoints p50 / max",
        "plan compute (ms)",
    )
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    limits = load_robot_config("sim").limits
    cpu_ms: dict[str, list[float]] = {}  # setting -> CPU per robot second of each run
    rclpy.init()
    node = rclpy.create_node("plan_stream_bench")
    try:
        for kind, rate in SETTINGS:
            for run in range(1, args.runs + 1):
                sub = subprocess.Popen(
                    [sys.executable, "-m", "vla_ros.benchmarks.plan_stream", "--subscriber", kind, str(seconds + 15)]
                )
                publisher = node.create_publisher(COMMAND_TYPES[kind], TOPIC, 10)
                deadline = time.monotonic() + 10.0
                while publisher.get_subscription_count() < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                result = replay(chunks, start_q, kind, rate, seconds, publisher, command_message)
                node.destroy_publisher(publisher)
                sub.terminate()
                sub.wait()
                per_second = result["cpu_s"] / result["seconds"] * 1e3
                cpu_ms.setdefault(f"{kind} @ {rate:.0f} Hz", []).append(per_second)
                if kind == "joint_trajectory_plan":
                    plans = result["plans"]
                    knots = [len(p[0].offsets_ns) for p in plans]
                    compute = np.array(result["core"].stream.compute_s) * 1e3
                    ratios = jtc_ratios(plans, start_q, limits)
                    extra = (
                        f"{len(plans)} plans ({result['late']} late) | {int(np.median(knots))} / {max(knots)} | "
                        f"p50 {np.median(compute):.1f} / max {compute.max():.1f} (last 10); JTC 1 kHz worst velocity / "
                        f"acceleration / jerk: {ratios[0]:.2f} / {ratios[1]:.2f} / {ratios[2]:.2f} x limit"
                    )
                else:
                    extra = f"{int(seconds * rate)} | - | -"
                print(f"| {kind} @ {rate:.0f} Hz | {run} | {per_second:.1f} | {extra} |", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print("\n| setting | CPU per robot second (ms): min / median / max |\n|---|---|")
    for setting, values in cpu_ms.items():
        print(f"| {setting} | {min(values):.1f} / {np.median(values):.1f} / {max(values):.1f} |")
    q, rejected = bypass_commands(chunks, start_q, limits.names)
    ratios, step = limit_ratios(q, limits), np.abs(np.diff(q, axis=0)).max()
    print(
        f"\nbypass_executor (the same chunks straight to JTC with positions_upsampling, 1 kHz, open loop): {rejected} "
        f"rejected; worst velocity / acceleration / jerk: {ratios[0]:.2f} / {ratios[1]:.2f} / {ratios[2]:.2f} x limit; "
        f"largest command step in one cycle {step:.3f} rad"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
