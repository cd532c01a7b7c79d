"""CPU cost of publishing one executor command from Python: rclpy + Fast DDS, no executor.

    python -m vla_ros.benchmarks.publish_cost [--subscribers 0 1 2] [--messages 2500] [--rate 500]

Publishes a 7-float `Float64MultiArray` (the sim arm's `position_array` command) at `--rate` Hz to
0, 1 or 2 subscriber processes on this host and times, with the publishing thread's CPU clock,
building the message (a new one per command, as the executor node does, and a reused one with an
`array.array` assigned) and building + publishing it. Run it under different Fast DDS settings
(`FASTDDS_BUILTIN_TRANSPORTS=UDPv4`, `FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_shm.xml`) to
compare transports. Prints one markdown row per subscriber count. A benchmark, not a test: the
numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import array
import os
import subprocess
import sys
import time

import numpy as np

TOPIC = "publish_cost_command"
JOINTS = 7


def _subscriber(seconds: float) -> None:
    """A subscriber process: takes every message for `seconds`."""
    import rclpy
    from std_msgs.msg import Float64MultiArray

    rclpy.init()
    node = rclpy.create_node("publish_cost_subscriber")
    node.create_subscription(Float64MultiArray, TOPIC, lambda _msg: None, 10)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)


def _publish(node, subscribers: int, messages: int, rate_hz: float, reuse: bool) -> tuple[np.ndarray, np.ndarray]:
    """(build, build + publish) thread CPU seconds per message (messages,)."""
    from std_msgs.msg import Float64MultiArray

    pub = node.create_publisher(Float64MultiArray, TOPIC, 10)
    deadline = time.monotonic() + 10.0
    while pub.get_subscription_count() < subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    if pub.get_subscription_count() < subscribers:
        raise RuntimeError(f"only {pub.get_subscription_count()} of {subscribers} subscribers matched in 10 s")
    positions = np.linspace(0.0, 1.0, JOINTS)
    message = Float64MultiArray()
    build, total = np.empty(messages), np.empty(messages)
    period = 1.0 / rate_hz
    next_s = time.monotonic()
    for i in range(messages):
        next_s += period
        time.sleep(max(next_s - time.monotonic(), 0.0))
        start = time.thread_time()
        if reuse:
            message.data = array.array("d", positions.tobytes())
            msg = message
        else:
            msg = Float64MultiArray(data=positions.tolist())
        built = time.thread_time()
        pub.publish(msg)
        build[i], total[i] = built - start, time.thread_time() - start
    node.destroy_publisher(pub)
    return build, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--messages", type=int, default=2500)
    parser.add_argument("--rate", type=float, default=500.0, help="Hz")
    parser.add_argument("--subscriber-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber_seconds is not None:
        _subscriber(args.subscriber_seconds)
        return 0
    import rclpy

    transports = os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "default")
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "none")
    print(f"Fast DDS builtin transports: {transports}; profile: {profile}; load average {os.getloadavg()[0]:.1f}")
    print("| subscribers | message | build p50 (us) | build + publish p50 / p99 (us) |")
    print("|---|---|---|---|")
    rclpy.init()
    node = rclpy.create_node("publish_cost")
    seconds = 2 * (args.messages / args.rate + 10.0) + 5.0
    try:
        for n in args.subscribers:
            cmd = [sys.executable, "-m", "vla_ros.benchmarks.publish_cost", "--subscriber-seconds", str(seconds)]
            subs = [subprocess.Popen(cmd) for _ in range(n)]
            try:
                for reuse in (False, True):
                    build, total = (x * 1e6 for x in _publish(node, n, args.messages, args.rate, reuse))
                    print(
                        f"| {n} | {'reused' if reuse else 'new'} | {np.percentile(build, 50):.1f} | "
                        f"{np.percentile(total, 50):.1f} / {np.percentile(total, 99):.1f} |",
                        flush=True,
                    )
            finally:
                for s in subs:
                    s.terminate()
                    s.wait(timeout=10)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
