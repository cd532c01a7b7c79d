"""Harness for node tests: real node processes (bring-up) and a test-side rclpy node on loopback DDS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from harness import wait_until  # noqa: F401 - node tests import it from here

from vla_ros.bringup import Bringup
from vla_ros.launch_description import node_specs


class Peer:
    """The test's own node: plays the robot (joint states, cameras) and records what the nodes publish."""

    def __init__(self, joint_names: tuple[str, ...], commands_type=None):
        """`commands_type`: the executor's `output` message type (default Float64MultiArray)."""
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        rclpy.init(args=[])
        self.node = rclpy.create_node("test_peer")
        self.joint_names = joint_names
        self.chunks: list = []
        self.commands: list[tuple[float, np.ndarray]] = []
        self.diagnostics: list = []
        self.node.create_subscription(JointTrajectory, "action_chunk", self.chunks.append, 50)
        self.command_msgs: list = []
        self.node.create_subscription(commands_type or Float64MultiArray, "commands", self._on_command, 500)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.js_pub = self.node.create_publisher(JointState, "joint_states", 10)
        self.img_pubs = {
            c: self.node.create_publisher(Image, t, 2)
            for c, t in (("front", "camera/image_raw"), ("wrist", "wrist_camera/image_raw"))
        }
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()
        self.q = np.zeros(len(joint_names))
        self.publish_images = True
        self.published_stamps: list[float] = []
        self._stop = threading.Event()
        self._thread = None
        self._clients: dict[str, object] = {}  # service name -> client

    def _on_command(self, msg) -> None:
        self.command_msgs.append(msg)
        if hasattr(msg, "data"):
            self.commands.append((time.monotonic(), np.array(msg.data)))

    def now_msg(self):
        return self.node.get_clock().now().to_msg()

    def publish_state(self) -> None:
        from sensor_msgs.msg import JointState

        stamp = self.now_msg()
        self.published_stamps.append(stamp.sec + stamp.nanosec * 1e-9)
        msg = JointState(
            name=list(reversed(self.joint_names)) + ["extra_joint"], position=list(reversed(self.q.tolist())) + [9.9]
        )
        msg.header.stamp = stamp
        self.js_pub.publish(msg)

    def publish_frames(self) -> None:
        from vla_ros.nodes.conversions import rgb_to_image_msg

        rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
        for cam, pub in self.img_pubs.items():
            pub.publish(rgb_to_image_msg(rgb, self.now_msg(), cam))

    def start_robot(self, rate_hz: float = 20.0, max_s: float = 120.0) -> None:
        """Publish joint states (and frames while `publish_images`) until stopped (bounded in time)."""

        def loop():
            end = time.monotonic() + max_s
            while not self._stop.is_set() and time.monotonic() < end:
                self.publish_state()
                if self.publish_images:
                    self.publish_frames()
                time.sleep(1.0 / rate_hz)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0, repeatable: bool = True):
        """One service call on a client kept per service; a `repeatable` request (a query, a set to a
        value) is sent again while answers are lost (vla_ros.nodes.service_calls)."""
        from vla_ros.nodes.service_calls import call

        if name not in self._clients:
            self._clients[name] = self.node.create_client(srv_type, name)
        return call(self._clients[name], request, timeout_s, repeatable=repeatable)

    def set_param(self, node: str, name: str, value):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        res = self.call(
            SetParameters,
            f"/{node}/set_parameters",
            SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]),
        )
        return res.results[0]

    def change_state(self, node: str, transition: str) -> bool:
        """A lifecycle transition ('configure', 'activate', 'deactivate', 'cleanup') through the
        node's standard ~/change_state service; True if it succeeded."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.id = getattr(Transition, f"TRANSITION_{transition.upper()}")
        return self.call(ChangeState, f"/{node}/change_state", request, timeout_s=60.0, repeatable=False).success

    def lifecycle_state(self, node: str) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(GetState, f"/{node}/get_state", GetState.Request()).current_state.label

    def wait_active(self, *nodes: str, timeout_s: float = 60.0) -> bool:
        """Until the lifecycle manager has activated `nodes` (bounded)."""
        return all(
            wait_until(lambda n=n: self.lifecycle_state(n) == "active", timeout_s, interval_s=0.2) for n in nodes
        )

    def trigger(self, name: str):
        from std_srvs.srv import Trigger

        return self.call(Trigger, name, Trigger.Request())

    def close(self) -> None:
        import rclpy

        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


@pytest.fixture
def nodes(ros_env, tiny_checkpoint, tmp_path):
    """Start policy node + chunk executor (sim robot config, tiny random checkpoint) and a Peer."""
    started: list[Bringup] = []
    peers: list[Peer] = []

    def start(
        policy_overrides=None,
        executor_overrides=None,
        commands_type=None,
        backend="octo",
        model_path=None,
        autostart=True,
        robot="sim",
        respawn=False,
        use_sim=False,
        manager_overrides=None,
    ):
        specs = node_specs(
            robot,
            backend=backend,
            model_path=str(tiny_checkpoint) if model_path is None else str(model_path),
            use_sim=use_sim,
            autostart=autostart,
            overrides={
                "vla_policy": {"inference_period_s": 0.2, **(policy_overrides or {})},
                "vla_chunk_executor": {**(executor_overrides or {})},
                "vla_lifecycle_manager": {**(manager_overrides or {})},
            },
            respawn=respawn,
        )
        bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env, respawn=respawn)
        bringup.start()
        started.append(bringup)
        peer = Peer(tuple(specs[0].parameters["joint_names"]), commands_type)
        peer.specs = {s.name: s for s in specs}
        peers.append(peer)
        return bringup, peer, specs

    yield start
    for p in peers:
        p.close()
    for b in started:
        b.stop()


def log_text(tmp_path: Path, node: str) -> str:
    return (tmp_path / "logs" / f"{node}.log").read_text()
