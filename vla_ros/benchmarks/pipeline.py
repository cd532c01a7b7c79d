"""Frame -> chunk overhead of the ROS path, without a model: the policy node with the `noop` backend.

    python -m vla_ros.benchmarks.pipeline [--frames 150] [--rate-hz 10] [--runs 3] [--dds shm,udp] [--cameras rgb8,jpeg]
        [--image-size 0,224] [--executor events,single]

Per DDS setting (`shm`: the package's config/fastdds_shm.xml; `udp`: no profile, UDP on loopback
with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) a worker process starts the real policy node
(`python -m vla_ros.nodes.policy_node`, backend `noop`: each frame fitted into --image-size
uint8 (0: left as received), a chunk of 50 points holding the joint state) and drives it as a robot would: per frame a
JointState, then the camera frame with the same stamp; a 640x480 rgb8 `Image` or a 480x640 (rows x
columns) JPEG `CompressedImage` (quality 90, a smooth test scene). Frame -> chunk = the worker's
clock when the chunk carrying that stamp arrives, minus the clock read just before the frame was
published: serialisation, DDS both ways, conversion, resize, chunk message. The node's own
`frame_to_chunk` diagnostic (frame stamp -> chunk published) is printed beside it. Chunks are
matched to frames by stamp; frames that produced no chunk (dropped by best-effort QoS, or
superseded) are counted. p50 / p99 in ms; with --runs > 1 the table gives the run with the
lowest p50 and the median of the runs' p50s (the machine is shared: load varies).

A second table says where the time goes in each run: the node's per-stage p50s from its
/diagnostics (`stage_*_p50_ms`: receive, convert, wait, predict, message, publish; see
`core/stage_times.py`), the driver's publish() call, and the rest (the chunk's way back).
--executor: the policy node's rclpy executor (`events`: rclpy.experimental.EventsExecutor, the
node's default; `single`: SingleThreadedExecutor), the driver uses the same kind. The workers run
in ROS_DOMAIN_ID when it is set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vla_ros.core.allocator import keep_freed_memory
from vla_ros.core.stage_times import FRAME_TO_CHUNK_STAGES
from vla_ros.launch_description import DDS_PROFILE_VARIABLE, NodeSpec, dds_environment
from vla_ros.nodes.policy_node import EXECUTOR_VARIABLE
from vla_ros.nodes.runner import make_executor

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7")
CAMERAS = {"rgb8": ("camera/image_raw", (480, 640)), "jpeg": ("camera/image_raw/compressed", (480, 640))}
NODE = "vla_policy_bench"


def test_scene(height: int, width: int) -> np.ndarray:
    """A smooth (height, width, 3) uint8 scene: gradients and blocks, JPEG-compressible like a camera's."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    rgb[height // 3 : height // 2, width // 4 : width // 2] = (200, 40, 40)
    return rgb.astype(np.uint8)


def policy_spec(camera: str, image_size: int) -> NodeSpec:
    topic = CAMERAS[camera][0]
    settings = json.dumps({"joints": list(JOINTS), "cameras": ["cam"], "image_size": image_size})
    params = {
        "backend": "vla_ros.backends.noop:BACKEND",  # not registered: named by module path
        "model_path": "",
        "backend_settings": settings,
        "joint_names": list(JOINTS),
        "camera_names": ["cam"],
        "camera_topics": [topic],
        "instruction": "benchmark",
        "inference_period_s": 0.01,
        "schedule_margin_s": 0.0,
        "max_observation_age_s": 1.0,
    }
    return NodeSpec("policy_node", "vla_ros.nodes.policy_node", NODE, params)


class Driver:
    """The worker's rclpy node: publishes joint states and frames, records chunks and diagnostics."""

    def __init__(self, camera: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from trajectory_msgs.msg import JointTrajectory

        rclpy.init(args=[])
        self.node = rclpy.create_node("pipeline_driver")
        self.camera = camera
        self.received: dict[int, float] = {}  # chunk stamp (stamp_key) -> arrival (perf_counter)
        self.publish_call_s: list[float] = []  # how long each frame's publish() call took in this process
        self.late_s: list[float] = []  # per frame: its stamp -> the start of its publish() (s; the node's
        # `receive` stage starts at the stamp, the end-to-end figure at the publish)
        self.diagnostics: list = []
        self.node.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.js_pub = self.node.create_publisher(JointState, "joint_states", 10)
        msg_type = CompressedImage if camera == "jpeg" else Image
        self.img_pub = self.node.create_publisher(msg_type, CAMERAS[camera][0], qos_profile_sensor_data)
        # the policy node's executor kind; spun by spin_once (EventsExecutor.spin() in a thread delivers nothing)
        self.executor = make_executor(events=os.environ.get(EXECUTOR_VARIABLE, "events") != "single")
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spin = threading.Thread(target=self._spin_until_stopped, daemon=True)
        self._spin.start()
        self.frame = self._frame_message()

    def _spin_until_stopped(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.1)

    def _frame_message(self):
        from sensor_msgs.msg import CompressedImage

        from vla_ros.core.images import encode_compressed
        from vla_ros.nodes.conversions import rgb_to_image_msg

        rgb = test_scene(*CAMERAS[self.camera][1])
        if self.camera == "jpeg":
            msg = CompressedImage(format="jpeg")
            msg.data = encode_compressed(rgb, "jpeg", 90)
            return msg
        return rgb_to_image_msg(rgb, self.node.get_clock().now().to_msg(), "cam")

    def _on_chunk(self, msg) -> None:
        self.received.setdefault(stamp_key(msg.header.stamp.sec, msg.header.stamp.nanosec), time.perf_counter())

    def change_state(self, transition: str, timeout_s: float = 60.0) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        client = self.node.create_client(ChangeState, f"/{NODE}/change_state")
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"/{NODE}/change_state did not appear within {timeout_s} s")
        request = ChangeState.Request()
        request.transition.id = getattr(Transition, f"TRANSITION_{transition.upper()}")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return future.done() and future.result().success

    def publish(self, q: np.ndarray, lead_s: float = 0.005) -> tuple[int, float]:
        """A joint state, then `lead_s` later the frame, both stamped with the frame's publish time
        (a robot's joint states come at 100+ Hz, so a fresh one is always there before a frame):
        (stamp key, perf_counter just before the frame is published)."""
        from builtin_interfaces.msg import Time
        from sensor_msgs.msg import JointState

        stamp_ns = self.node.get_clock().now().nanoseconds + int(lead_s * 1e9)
        stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        js = JointState(name=list(JOINTS), position=q.tolist())
        js.header.stamp = stamp
        self.js_pub.publish(js)
        time.sleep(max(0.0, (stamp_ns - self.node.get_clock().now().nanoseconds) * 1e-9))
        self.frame.header.stamp = stamp
        self.late_s.append((self.node.get_clock().now().nanoseconds - stamp_ns) * 1e-9)  # the sleep's overshoot
        sent = time.perf_counter()
        self.img_pub.publish(self.frame)
        self.publish_call_s.append(time.perf_counter() - sent)
        return stamp_key(stamp.sec, stamp.nanosec), sent

    def node_diagnostics(self) -> dict[str, float]:
        """The node's newest frame -> chunk figures and stage percentiles (ms) from /diagnostics."""
        for msg in reversed(self.diagnostics):
            values = {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
            if "frame_to_chunk_p50_ms" in values:
                return {k: float(v) for k, v in values.items() if k.endswith("_ms")}
        return {}

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self._spin.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def stamp_key(sec: int, nanosec: int) -> int:
    """A stamp in 0.1 ms units: chunk stamps pass through float seconds, frames are >= 1 ms apart."""
    return round((sec + nanosec * 1e-9) * 1e4)


def measure(camera: str, frames: int, rate_hz: float, log_dir: Path, image_size: int = 224) -> dict:
    """Run in a process whose environment already holds the DDS settings: start the node, drive it, stop it."""
    from vla_ros.bringup import Bringup

    driver = Driver(camera)
    bringup = Bringup([policy_spec(camera, image_size)], log_dir=log_dir / camera, env=dict(os.environ))
    bringup.start()
    try:
        if not (driver.change_state("configure") and driver.change_state("activate")):
            raise RuntimeError(f"the policy node did not configure/activate; see {bringup.log_dir}")
        q = np.linspace(-0.5, 0.5, len(JOINTS))
        sent: dict[int, float] = {}
        for _ in range(10):  # let discovery settle; not counted
            driver.publish(q)
            time.sleep(1.0 / rate_hz)
        for i in range(frames):
            key, t = driver.publish(q + 1e-3 * i)
            sent[key] = t
            time.sleep(1.0 / rate_hz)
        time.sleep(1.5)  # last chunks, one diagnostics period
        node = driver.node_diagnostics()
    finally:
        bringup.stop(timeout_s=5.0)
        driver.close()
    latency_ms = np.array([1e3 * (driver.received[k] - t) for k, t in sent.items() if k in driver.received])
    return {
        "camera": camera,
        "image_size": image_size,
        "frames": frames,
        "chunks": int(latency_ms.size),
        "p50_ms": float(np.percentile(latency_ms, 50)) if latency_ms.size else float("nan"),
        "p99_ms": float(np.percentile(latency_ms, 99)) if latency_ms.size else float("nan"),
        "node_p50_ms": node.get("frame_to_chunk_p50_ms", float("nan")),
        "node_p99_ms": node.get("frame_to_chunk_p99_ms", float("nan")),
        "driver_publish_p50_ms": float(np.percentile(driver.publish_call_s[-frames:], 50)) * 1e3,
        "driver_late_p50_ms": float(np.percentile(driver.late_s[-frames:], 50)) * 1e3,
        "stages_p50_ms": {s: node.get(f"stage_{s}_p50_ms", float("nan")) for s in FRAME_TO_CHUNK_STAGES},
    }


def worker_env(dds: str, domain_id: int, log_dir: Path, executor: str = "events") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != DDS_PROFILE_VARIABLE}
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOG_DIR=str(log_dir))
    env[EXECUTOR_VARIABLE] = executor
    if dds == "shm":
        env.update(dds_environment("shm", environ={}))
    return env


def run_case(
    dds: str,
    camera: str,
    frames: int,
    rate_hz: float,
    log_dir: Path,
    image_size: int = 224,
    timeout_s: float = 300.0,
    executor: str = "events",
) -> dict:
    """One measurement in a fresh worker process (DDS settings are read at rclpy start-up); `executor`:
    the policy node's rclpy executor, `events` or `single`. ROS_DOMAIN_ID is taken from the environment if set."""
    domain = int(os.environ.get("ROS_DOMAIN_ID") or 150 + (os.getpid() + hash((dds, camera))) % 60)
    cmd = [
        sys.executable,
        "-m",
        "vla_ros.benchmarks.pipeline",
        "--worker",
        camera,
        "--frames",
        str(frames),
        "--rate-hz",
        str(rate_hz),
        "--log-dir",
        str(log_dir),
        "--image-size",
        str(image_size),
    ]
    env = worker_env(dds, domain, log_dir, executor)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(
            f"pipeline worker ({dds}, {camera}) failed with code {out.returncode}:\n{out.stderr[-2000:]}"
        )
    return {"dds": dds, "executor": executor, **json.loads(lines[-1])}


def table(results: list[dict]) -> str:
    rows = [
        "| camera | backend input | DDS | node executor | chunks / frames | frame -> chunk p50 / p99 (ms) "
        "| median of runs' p50 (ms) "
        "| node: frame stamp -> chunk published p50 / p99 (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["camera"], r["image_size"], r["dds"], r["executor"]) for r in results},
        key=lambda k: (list(CAMERAS).index(k[0]), *k[1:]),
    )
    for camera, size, dds, executor in keys:
        runs = [
            r
            for r in results
            if (r["camera"], r["image_size"], r["dds"], r["executor"]) == (camera, size, dds, executor)
        ]
        best = min(runs, key=lambda r: r["p50_ms"] if r["chunks"] else float("inf"))
        median = float(np.median([r["p50_ms"] for r in runs]))
        label = "640x480 rgb8 Image" if camera == "rgb8" else "480x640 JPEG CompressedImage"
        rows.append(
            f"| {label} | {f'fitted into {size}x{size} (INTER_AREA)' if size else 'as received'} | {dds} | {executor} "
            f"| {best['chunks']} / {best['frames']} | {best['p50_ms']:.2f} / {best['p99_ms']:.2f} | {median:.2f} "
            f"| {best['node_p50_ms']:.2f} / {best['node_p99_ms']:.2f} |"
        )
    return "\n".join(rows)


def stage_table(results: list[dict]) -> str:
    """Where the time goes, per run: the driver's publish() call and the node's stage p50s (ms). The node's
    `receive` starts at the frame's stamp, the driver publishes `stamp -> publish()` later (its sleep's
    overshoot); `rest` = frame -> chunk - (receive - that) - the other stages: the chunk's way back."""
    rows = [
        "| camera | size | DDS | executor | frame -> chunk p50 | driver stamp -> publish() | driver publish() | "
        + " | ".join(f"node {s}" for s in FRAME_TO_CHUNK_STAGES)
        + " | rest (chunk back to the driver) |",
        "|---|---|---|---|---|---|---|" + "---|" * len(FRAME_TO_CHUNK_STAGES) + "---|",
    ]
    for r in results:
        stages = [r["stages_p50_ms"][s] for s in FRAME_TO_CHUNK_STAGES]
        rows.append(
            f"| {r['camera']} | {r['image_size'] or 'as received'} | {r['dds']} | {r['executor']} "
            f"| {r['p50_ms']:.2f} "
            f"| {r['driver_late_p50_ms']:.2f} | {r['driver_publish_p50_ms']:.2f} | "
            + " | ".join(f"{v:.2f}" for v in stages)
            + f" | {r['p50_ms'] - sum(stages) + r['driver_late_p50_ms']:.2f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="frame -> chunk overhead of the ROS path (no-op backend, real node processes)"
    )
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dds", default="shm,udp", help="comma-separated: shm, udp")
    parser.add_argument("--cameras", default="rgb8,jpeg", help="comma-separated: rgb8, jpeg")
    parser.add_argument("--executor", default="events", help="comma-separated policy node executors: events, single")
    parser.add_argument(
        "--image-size", default="224", help="comma-separated backend input sizes; 0 = frames as received"
    )
    parser.add_argument("--worker", choices=tuple(CAMERAS), help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.worker:
        sys.setswitchinterval(0.0005)  # as the policy node: the driver's own threads add no GIL wait
        keep_freed_memory()  # as the policy node: a frame's 0.9 MB buffers stay in the heap
        print(
            json.dumps(measure(args.worker, args.frames, args.rate_hz, args.log_dir, int(args.image_size))), flush=True
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="vla_ros_pipeline_") as tmp:
        log_dir = args.log_dir or Path(tmp)
        results = []
        for _ in range(args.runs):
            for dds, executor, camera, size in itertools.product(
                args.dds.split(","),
                args.executor.split(","),
                args.cameras.split(","),
                (int(v) for v in args.image_size.split(",")),
            ):
                results.append(run_case(dds, camera, args.frames, args.rate_hz, log_dir, size, executor=executor))
                r = results[-1]
                print(
                    f"# {dds} {executor} {camera} {size}: {r['chunks']}/{r['frames']} chunks, p50 {r['p50_ms']:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    load = os.getloadavg()
    print(
        f"pipeline benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, {args.frames} frames at {args.rate_hz:g} Hz, "
        f"{args.runs} run(s)"
    )
    print(table(results))
    print("\nwhere the time goes, each run (p50 per stage in ms; the stages' p50s need not add up to the total's):")
    print(stage_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
