"""Control-tick jitter of the chunk executor while the policy node infers in another process.

    python -m vla_ros.benchmarks.executor_jitter [--rates 100 250 500] [--seconds 20] [--runs 3]
        [--set cpu_affinity=[1] --set realtime_priority=50 ...]

Brings up the sim robot, the policy node (bundled demo model, inferring continuously) and the
executor at each rate, then reads the executor's /diagnostics: tick lateness (wake-up after the
deadline) p50/p99/max over the last 1000 ticks, and CPU time per tick. Prints a markdown table.
A benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from vla_ros.bringup import Bringup
from vla_ros.launch_description import node_specs

KEYS = (
    "tick_lateness_p50_ms",
    "tick_lateness_p99_ms",
    "tick_lateness_max_ms",
    "tick_cpu_p50_us",
    "tick_cpu_p99_us",
    "chunks_accepted",
)


def measure(
    rate_hz: float, seconds: float, log_dir: Path, domain_id: int, executor_overrides: dict | None = None
) -> dict[str, str]:
    """The executor's last diagnostics after `seconds` of tracking at `rate_hz`."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    env = {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(log_dir / "ros"),
    }
    os.environ.update(env)
    specs = node_specs(
        "sim",
        use_sim=True,
        overrides={
            "vla_policy": {"instruction": "reach the red cube"},
            "vla_chunk_executor": {**(executor_overrides or {}), "control_rate_hz": rate_hz},
        },
    )
    latest: dict[str, str] = {}
    with Bringup(specs, log_dir=log_dir / f"{rate_hz:.0f}hz", env=env):
        rclpy.init(args=[])
        node = rclpy.create_node("jitter_benchmark")

        def on_diag(msg):
            for s in msg.status:
                if s.name.endswith(": executor"):
                    latest.update({kv.key: kv.value for kv in s.values})

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        time.sleep(seconds)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return latest


def _override(text: str) -> tuple[str, object]:
    """`name=value` (value in YAML) -> (name, value)."""
    import yaml

    name, _, value = text.partition("=")
    return name.strip(), yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0, 500.0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per rate; the last 1000 ticks are reported")
    parser.add_argument("--runs", type=int, default=1, help="repeat every rate this many times (a row each)")
    parser.add_argument("--set", type=_override, action="append", default=[], help="executor parameter name=value")
    args = parser.parse_args(argv)
    overrides = dict(args.set)
    print(f"executor overrides: {overrides or 'none'}; load average {os.getloadavg()[0]:.1f} at start")
    print("| rate | run | lateness p50 / p99 / max (ms) | CPU per tick p50 / p99 (us) | chunks tracked |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for i, rate in enumerate(args.rates):
                d = measure(
                    rate, args.seconds, Path(tmp) / f"run{run}", 60 + (os.getpid() + i + 7 * run) % 100, overrides
                )
                if not all(k in d for k in KEYS):
                    print(f"| {rate:.0f} Hz | {run} | no diagnostics received |  |  |")
                    continue
                print(
                    f"| {rate:.0f} Hz | {run} | {d['tick_lateness_p50_ms']} / {d['tick_lateness_p99_ms']} / "
                    f"{d['tick_lateness_max_ms']} "
                    f"| {d['tick_cpu_p50_us']} / {d['tick_cpu_p99_us']} | {d['chunks_accepted']} |",
                    flush=True,
                )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
