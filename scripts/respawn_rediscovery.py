"""Does a process restarted after a freeze hear its peers again? A DDS check without vla_ros's nodes.

A `peer` process publishes two camera-sized Image topics (30 Hz, reliable), a latched String and calls a
Trigger service of the `restarted` process every 0.25 s; the `restarted` process beats on a topic, subscribes to
the three topics and serves the Trigger. Each cycle starts `restarted`, waits until both directions work
(its heartbeat reaches the peer, a Trigger is answered, every topic reaches it), then freezes it with SIGSTOP
for `--freeze-s` (its peers still match it), SIGKILLs it (`--mode stop-term`: SIGCONT + SIGTERM first;
`--mode kill`: no freeze) and starts the next one at once. A cycle whose process misses any direction within
`--wait-s` is deaf. `--lease-s` sets Fast DDS's participant lease (how long peers keep a silent participant).

    python scripts/respawn_rediscovery.py --cycles 60 --transport udp     # one JSON line per cycle, then a summary

Exit status: 0 when no cycle was deaf, 1 otherwise. docs/reliability.md gives the runs made with it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DIRECTIONS = ("heartbeat_heard", "service_answered", "cam1", "cam2", "latched")


def _log(path: str, *words: str) -> None:
    with open(path, "a") as f:
        f.write(" ".join(words) + "\n")


def run_role(role: str, log: str, best_effort_cameras: bool = False) -> None:
    """Spin the `peer` or `restarted` node until killed; the camera topics reliable (depth 10) or best effort."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    camera_reliability = ReliabilityPolicy.BEST_EFFORT if best_effort_cameras else ReliabilityPolicy.RELIABLE
    camera_qos = QoSProfile(depth=10, reliability=camera_reliability)
    rclpy.init()
    node = rclpy.create_node(role)
    if role == "peer":
        frame = Image(height=96, width=128, encoding="rgb8", step=384, data=bytes(96 * 384))
        cameras = [node.create_publisher(Image, topic, camera_qos) for topic in ("/cam1", "/cam2")]
        node.create_publisher(String, "/restarted/latched", latched).publish(String(data="task"))
        node.create_timer(1 / 30, lambda: [c.publish(frame) for c in cameras])
        node.create_subscription(
            String, "/restarted/heartbeat", lambda m: _log(log, "heartbeat_heard", m.data), best_effort
        )
        client, pending = node.create_client(Trigger, "/restarted/trigger"), {}  # the call in flight: future, sent

        def call() -> None:
            if "future" in pending and pending["future"].done():
                _log(log, "service_answered", pending.pop("future").result().message)
            elif "future" in pending and time.monotonic() - pending["sent"] > 1.0:
                client.remove_pending_request(pending.pop("future"))
            if "future" not in pending and client.service_is_ready():
                pending.update(future=client.call_async(Trigger.Request()), sent=time.monotonic())

        node.create_timer(0.25, call)
    else:
        pid, got = str(os.getpid()), set()

        def first(what: str) -> None:  # each direction logged once
            if what not in got:
                got.add(what)
                _log(log, what, pid)

        beat = node.create_publisher(String, "/restarted/heartbeat", best_effort)
        node.create_timer(0.25, lambda: beat.publish(String(data=pid)))
        for topic, name in (("/cam1", "cam1"), ("/cam2", "cam2")):
            node.create_subscription(Image, topic, lambda _m, n=name: first(n), camera_qos)
        node.create_subscription(String, "/restarted/latched", lambda _m: first("latched"), latched)
        node.create_service(
            Trigger, "/restarted/trigger", lambda _req, res: Trigger.Response(success=True, message=pid)
        )
    rclpy.spin(node)


def heard(logs: list[Path], pid: int, wait_s: float) -> dict[str, float]:
    """Seconds after start at which each direction first worked for process `pid` (within `wait_s`)."""
    start, seen = time.monotonic(), {}
    while time.monotonic() - start < wait_s and len(seen) < len(DIRECTIONS):
        for path in logs:
            lines = path.read_text().splitlines() if path.exists() else []
            for what, _, who in (line.partition(" ") for line in lines):
                if who == str(pid) and what in DIRECTIONS:
                    seen.setdefault(what, round(time.monotonic() - start, 2))
        time.sleep(0.1)
    return seen


def lease_profile(path: Path, lease_s: float) -> Path:
    """A Fast DDS default profile with a participant lease of `lease_s`, announced every lease_s / 3."""

    def duration(seconds: float) -> str:
        return f"<sec>{int(seconds)}</sec><nanosec>{round(seconds % 1 * 1e9)}</nanosec>"

    path.write_text(
        '<dds xmlns="http://www.eprosima.com"><profiles><participant profile_name="lease" is_default_profile="true">'
        f"<rtps><builtin><discovery_config><leaseDuration>{duration(lease_s)}</leaseDuration>"
        f"<leaseAnnouncement>{duration(lease_s / 3)}</leaseAnnouncement></discovery_config></builtin></rtps>"
        "</participant></profiles></dds>\n"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument(
        "--mode",
        choices=("stop", "kill", "stop-term"),
        default="stop",
        help="freeze, then SIGKILL; SIGKILL at once; or freeze, then SIGCONT + SIGTERM (SIGKILL after 5 s)",
    )
    p.add_argument("--freeze-s", type=float, default=10.0, help="how long the process is frozen before SIGKILL")
    p.add_argument("--wait-s", type=float, default=20.0, help="how long a new process has to hear and be heard")
    p.add_argument("--transport", choices=("default", "udp"), default="default")
    p.add_argument(
        "--lease-s",
        type=float,
        default=None,
        help="Fast DDS participant lease of both processes (s; announced every lease / 3; default: Fast DDS's 20 s)",
    )
    p.add_argument("--best-effort-cameras", action="store_true", help="the camera topics best effort at both ends")
    p.add_argument("--domain-id", type=int, default=90 + os.getpid() % 10)
    p.add_argument("--log-dir", type=Path, default=None)
    p.add_argument("--role", choices=("peer", "restarted"), help=argparse.SUPPRESS)
    p.add_argument("--role-log", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role:
        run_role(args.role, args.role_log, args.best_effort_cameras)
        return 0
    log_dir = args.log_dir or Path(f"/tmp/respawn_rediscovery_{os.getpid()}")
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    if args.transport == "udp":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
    if args.lease_s is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(lease_profile(log_dir / "lease.xml", args.lease_s))
    peer_log, restarted_log = log_dir / "peer.log", log_dir / "restarted.log"

    def start(role: str, log: Path) -> subprocess.Popen:
        extra = ["--best-effort-cameras"] if args.best_effort_cameras else []
        return subprocess.Popen([sys.executable, __file__, "--role", role, "--role-log", str(log), *extra], env=env)

    peer, proc, deaf = start("peer", peer_log), None, 0
    try:
        for cycle in range(args.cycles):
            proc = start("restarted", restarted_log)
            seen = heard([peer_log, restarted_log], proc.pid, args.wait_s)
            missing = [d for d in DIRECTIONS if d not in seen]
            deaf += bool(missing)
            print(json.dumps({"cycle": cycle, "pid": proc.pid, "missing": missing, "first_s": seen}), flush=True)
            if args.mode != "kill":
                proc.send_signal(signal.SIGSTOP)
                time.sleep(args.freeze_s)
            if args.mode == "stop-term":
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    pass
            proc.kill()
            proc.wait()
    finally:
        for p_ in (proc, peer):
            if p_ is not None and p_.poll() is None:
                p_.kill()
                p_.wait()
    freeze = f", freeze {args.freeze_s:g} s" if args.mode != "kill" else ""
    lease = f", lease {args.lease_s:g} s" if args.lease_s is not None else ""
    print(f"{args.cycles} cycles ({args.mode}{freeze}, {args.transport}{lease}): {deaf} deaf", flush=True)
    return 1 if deaf else 0


if __name__ == "__main__":
    sys.exit(main())
