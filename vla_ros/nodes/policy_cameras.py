"""The policy node's cameras: one subscription per camera topic (sensor_msgs/Image, or CompressedImage for a
topic ending in `/compressed`), each frame converted to RGB and handed to the PolicyCore, and a watch that
reports a camera silent while the node is active."""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from vla_ros.core.images import ImageFormatError
from vla_ros.nodes import conversions
from vla_ros.policy_core import PolicyCore

CAMERA_SILENT_S = 5.0  # seconds active without a usable frame from a camera before it is reported (and again)


class PolicyCameras:
    """The camera subscriptions of `node`, feeding `core`; `active()` says whether the node infers now."""

    def __init__(self, node, core: PolicyCore, topics: tuple[str, ...], log, active: Callable[[], bool]):
        self.node, self.core, self.log, self.active = node, core, log, active
        self.topics = dict(zip(core.cameras, topics))  # camera -> topic
        self.subs: dict = {}  # camera -> its subscription (made by `subscribe`)

    def subscribe(self) -> list:
        """Subscribe to every camera; the entities made (subscriptions and the watch timer), to destroy later."""
        self.subs = {camera: self._subscribe(camera, topic) for camera, topic in self.topics.items()}
        return [*self.subs.values(), self.node.create_timer(1.0, self._watch)]

    def _subscribe(self, camera: str, topic: str):
        if topic.endswith("/compressed"):
            msg_type, convert = CompressedImage, conversions.compressed_msg_to_rgb
        else:
            msg_type, convert = Image, conversions.image_msg_to_rgb
        return self.node.create_subscription(
            msg_type, topic, lambda m, c=camera: self._on_image(c, m, convert), qos_profile_sensor_data
        )

    def _on_image(self, camera: str, msg, convert) -> None:
        received_s, received = self.core.clock(), time.perf_counter()
        try:
            rgb = convert(msg)
        except ImageFormatError as exc:
            fmt = msg.encoding if hasattr(msg, "encoding") else msg.format
            self.log.error(f"dropping frame from camera '{camera}': {exc}", key=f"image:{camera}:{fmt}:{len(msg.data)}")
            return
        if not self.core.add_image(camera, conversions.stamp_to_s(msg.header.stamp), rgb, received_s, received):
            self.log.error(
                f"dropping frame from camera '{camera}': stamped no later than the frame held (out of order or a "
                "duplicated stamp)",
                key=f"order:{camera}",
            )

    def _watch(self) -> None:
        """While active: report each camera silent for CAMERA_SILENT_S (again every CAMERA_SILENT_S while it lasts)
        with the publishers its subscription is matched with and those in the ROS graph: none means the camera
        (or discovery) is gone; some means they send nothing this node receives (a new subscription does not
        mend that: docs/reliability.md, deaf respawns)."""
        for camera, silent_s in self.core.silent_cameras(self.active(), CAMERA_SILENT_S):
            topic = self.topics[camera]
            self.node.get_logger().warning(
                f"camera '{camera}': no usable frame on '{topic}' for {silent_s:.1f} s while active (subscription "
                f"matched with {self.subs[camera].get_publisher_count()} publisher(s), "
                f"{self.node.count_publishers(topic)} in the ROS graph; camera_silences: "
                f"{self.core.counters.faults['camera_silences']})"
            )
