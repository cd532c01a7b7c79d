"""What recording costs the robot: the demo with and without the recorder, alternating, N runs each.

    python -m vla_ros.benchmarks.recording_overhead [--runs 3] [--episodes 10] [--viz]

Each run is `vla-ros demo` (sim, policy, executor, lifecycle manager as processes) on the same seeds;
`--record` runs add the recorder node (MCAP + LeRobotDataset, conversion while the next episode runs),
`--viz` adds the rerun node to the recording runs too (writing an .rrd). Per run: success rate, the
policy node's frame -> chunk p50 / p99 (every chunk of the run), the executor's tick lateness p99 (over
its last 1000 ticks, sampled once a second: median and max of the samples), the chunk's arrival latency
in another process, and for recording runs the episodes recorded and frames dropped. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from vla_ros.demo import run_demo


def _row(kind: str, run: int, s: dict) -> str:
    f2c, late, arrival = s["frame_to_chunk_ms"], s["tick_lateness_p99_ms"], s["observation_to_chunk_received_ms"]
    rec = s.get("recording")
    rec_text = f"{rec['episodes_converted']} / {rec['dropped']}" if rec else "-"
    return (
        f"| {kind} | {run} | {s['success_rate']:.2f} | {f2c['p50']:.1f} / {f2c['p99']:.1f} | "
        f"{late['median']:.3f} / {late['max']:.3f} | {arrival['p50']:.1f} / {arrival['p99']:.1f} | {rec_text} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--viz", action="store_true", help="recording runs also log to rerun (.rrd)")
    args = parser.parse_args(argv)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; {args.episodes} episodes per run, seeds from {args.first_seed}"
    )
    print(
        "| recording | run | success | frame→chunk p50 / p99 (ms) | tick lateness p99: median / max (ms) | "
        "chunk arrival p50 / p99 (ms) | episodes converted / frames dropped |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for record in (False, True):
                s = run_demo(
                    args.episodes,
                    args.first_seed,
                    Path(tmp) / f"{run}-{int(record)}",
                    record=record,
                    viz=record and args.viz,
                    log=lambda *_: None,
                )
                kind = ("on" + (" + rerun" if args.viz else "")) if record else "off"
                print(_row(kind, run, s), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
