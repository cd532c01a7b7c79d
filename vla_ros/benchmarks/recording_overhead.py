"""What recording costs the robot: the demo with and without the recorder, alternating, N runs each.

    python -m vla_ros.benchmarks.recording_overhead [--runs 3] [--episodes 10] [--viz] [--output KIND] [--domain-id N]

Each run is `vla-ros demo` (sim, policy, executor, lifecycle manager as processes) on the same seeds;
`--record` runs add the recorder node (MCAP + LeRobotDataset, conversion while the next episode runs),
`--viz` adds the rerun node to the recording runs too (writing an .rrd). Per run: success rate, the
policy node's frame -> chunk p50 / p99 (every chunk of the run), the executor's tick lateness p99 (over
its last 1000 ticks, sampled once a second: median and max of the samples), the chunk's arrival latency
in another process, and for recording runs the episodes recorded and frames dropped; and each node process's
CPU seconds per wall second (user + system, its finished children's too: the recorder's ffmpeg) from the end of
the first episode to the end of the last (1.0 = one core busy). Prints markdown tables: one row per run, then
the CPU per node with the min / median / max of the runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vla_ros.demo import DEMO_OUTPUTS, run_demo

NODE_MODULES = {  # the node processes whose CPU is measured, by the module they run
    "policy": "vla_ros.nodes.policy_node",
    "executor": "vla_ros.nodes.chunk_executor_node",
    "sim": "vla_ros.nodes.sim_robot_node",
    "recorder": "vla_ros.nodes.recorder_node",
    "manager": "vla_ros.nodes.lifecycle_manager",
}


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds: user + system + its waited-for children's, command line) from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited while listed
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
        out[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / tick, cmdline)
    return out


def node_cpu_seconds() -> dict[str, float]:
    """Node -> CPU seconds so far of the node processes this process started (each with its live descendants)."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        return procs[pid][1] + sum(tree(c) for c in children.get(pid, ()))

    out = {}
    for pid in children.get(os.getpid(), ()):
        node = next((n for n, module in NODE_MODULES.items() if f"-m {module} " in procs[pid][2] + " "), None)
        if node is not None:
            out[node] = out.get(node, 0.0) + tree(pid)
    return out


class CpuWindow:
    """CPU seconds per wall second per node between the first and the last `mark`."""

    def __init__(self):
        self.marks: list[tuple[float, dict[str, float]]] = []

    def mark(self) -> None:
        self.marks.append((time.monotonic(), node_cpu_seconds()))

    def per_wall_second(self) -> dict[str, float]:
        if len(self.marks) < 2:
            raise RuntimeError(f"CPU window: {len(self.marks)} marks, need 2 (a run of at least 2 episodes)")
        (t0, first), (t1, last) = self.marks[0], self.marks[-1]
        return {n: (last[n] - first[n]) / (t1 - t0) for n in NODE_MODULES if n in first and n in last}


def _row(kind: str, run: int, s: dict) -> str:
    f2c, late, arrival = s["frame_to_chunk_ms"], s["tick_lateness_p99_ms"], s["observation_to_chunk_received_ms"]
    rec = s.get("recording")
    rec_text = f"{rec['episodes_converted']} / {rec['dropped']}" if rec else "-"
    return (
        f"| {kind} | {run} | {s['success_rate']:.2f} | {f2c['p50']:.1f} / {f2c['p99']:.1f} | "
        f"{late['median']:.3f} / {late['max']:.3f} | {arrival['p50']:.1f} / {arrival['p99']:.1f} | {rec_text} |"
    )


def _cpu_table(cpu: dict[str, list[dict[str, float]]]) -> list[str]:
    """Markdown rows: per recording setting and node, each run's CPU seconds per wall second and min / median / max."""
    runs = max(len(v) for v in cpu.values())
    lines = [
        "| recording | node | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | min / median / max |",
        "|---|---|" + "---|" * runs + "---|",
    ]
    for kind, per_run in cpu.items():
        for node in NODE_MODULES:
            values = [r[node] for r in per_run if node in r]
            if values:
                cells = " | ".join(f"{v:.3f}" for v in values)
                spread = f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"
                lines.append(f"| {kind} | {node} | {cells} | {spread} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--viz", action="store_true", help="recording runs also log to rerun (.rrd)")
    parser.add_argument("--output", choices=DEMO_OUTPUTS, default=DEMO_OUTPUTS[0], help="the executor's output")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the demo's, from the pid)")
    args = parser.parse_args(argv)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; {args.episodes} episodes per run, seeds from {args.first_seed}, "
        f"output {args.output}"
    )
    print(
        "| recording | run | success | frame→chunk p50 / p99 (ms) | tick lateness p99: median / max (ms) | "
        "chunk arrival p50 / p99 (ms) | episodes converted / frames dropped |"
    )
    print("|---|---|---|---|---|---|---|")
    cpu: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for record in (False, True):
                window = CpuWindow()
                s = run_demo(
                    args.episodes,
                    args.first_seed,
                    Path(tmp) / f"{run}-{int(record)}",
                    domain_id=args.domain_id,
                    record=record,
                    viz=record and args.viz,
                    output=args.output,
                    log=lambda text, w=window: w.mark() if text.startswith("episode ") else None,
                )
                kind = ("on" + (" + rerun" if args.viz else "")) if record else "off"
                cpu.setdefault(kind, []).append(window.per_wall_second())
                print(_row(kind, run, s), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print("\nCPU seconds per wall second, from the end of the first episode to the end of the last:")
    print("\n".join(_cpu_table(cpu)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
