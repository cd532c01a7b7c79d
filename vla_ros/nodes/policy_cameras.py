"""The policy node's cameras: one subscription per camera topic (sensor_msgs/Image, or CompressedImage for a
topic ending in `/compressed`), each frame converted to RGB and handed to the PolicyCore, and a watch that
reports a camera silent while the node is active, and says which cameras it hears (`hearing`, in its heartbeat):
while subscribed (configured, active or not), a camera whose subscription has been matched with a publisher for
CAMERA_SILENT_S without a message is deaf, and the lifecycle manager replaces the process once for it."""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from vla_ros.core.images import ImageFormatError
from vla_ros.nodes import conversions
from vla_ros.nodes.runner import destroy_entities
from vla_ros.nodes.supervision import Hearing
from vla_ros.policy_core import PolicyCore

CAMERA_SILENT_S = 5.0  # seconds without a usable frame while active before a camera is reported (and again),
# and matched with a publisher without any message before it is deaf


class PolicyCameras:
    """The camera subscriptions of `node`, feeding `core`; `active()` says whether the node infers now."""

    def __init__(self, node, core: PolicyCore, topics: tuple[str, ...], log, active: Callable[[], bool]):
        self.node, self.core, self.log, self.active = node, core, log, active
        self.topics = dict(zip(core.cameras, topics))  # camera -> topic
        self.subs: dict = {}  # camera -> its subscription (made by `subscribe`)
        self._entities: list = []  # the subscriptions and the watch timer, destroyed by `unsubscribe`
        self.resolved = dict(self.topics)  # camera -> its topic, resolved (remapped, namespaced) once subscribed
        self.heard: dict[str, float] = {}  # camera -> perf_counter of its last message (usable or not)
        self.deaf: set[str] = set()  # cameras matched with a publisher for CAMERA_SILENT_S without a message
        self._matched_since: dict[str, float] = {}  # camera -> perf_counter since when a publisher is matched

    def subscribe(self) -> None:
        """Subscribe to every camera and start the watch."""
        self.subs = {camera: self._subscribe(camera, topic) for camera, topic in self.topics.items()}
        self.resolved = {camera: sub.topic_name for camera, sub in self.subs.items()}
        self.deaf, self._matched_since = set(), {}
        self._entities = [*self.subs.values(), self.node.create_timer(1.0, self._watch)]

    def unsubscribe(self) -> None:
        """Destroy the subscriptions and the watch: no camera is watched, none is deaf."""
        destroy_entities(self.node, self._entities)
        self.subs, self.deaf = {}, set()

    def _subscribe(self, camera: str, topic: str):
        if topic.endswith("/compressed"):
            msg_type, convert = CompressedImage, conversions.compressed_msg_to_rgb
        else:
            msg_type, convert = Image, conversions.image_msg_to_rgb
        return self.node.create_subscription(
            msg_type, topic, lambda m, c=camera: self._on_image(c, m, convert), qos_profile_sensor_data
        )

    def hearing(self) -> Hearing:
        """The camera topics (resolved) deaf now, and those with a message within CAMERA_SILENT_S. The
        containers are copied at once: the heartbeat may beat from a thread of its own."""
        now = time.perf_counter()
        heard = {c for c, at in list(self.heard.items()) if now - at < CAMERA_SILENT_S}
        deaf = set(self.deaf)
        return Hearing(frozenset(self.resolved[c] for c in deaf), frozenset(self.resolved[c] for c in heard))

    def _on_image(self, camera: str, msg, convert) -> None:
        received_s, received = self.core.clock(), time.perf_counter()
        self.heard[camera] = received
        self.deaf.discard(camera)
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
        mend that: docs/reliability.md, deaf respawns). Active or not, `_update_deaf`."""
        now = time.perf_counter()
        matched = {camera: sub.get_publisher_count() for camera, sub in self.subs.items()}
        for camera, count in matched.items():
            self._update_deaf(camera, count, now)
        for camera, silent_s in self.core.silent_cameras(self.active(), CAMERA_SILENT_S):
            topic = self.topics[camera]
            self.node.get_logger().warning(
                f"camera '{camera}': no usable frame on '{topic}' for {silent_s:.1f} s while active (subscription "
                f"matched with {matched[camera]} publisher(s), "
                f"{self.node.count_publishers(topic)} in the ROS graph; camera_silences: "
                f"{self.core.counters.faults['camera_silences']})"
            )

    def _update_deaf(self, camera: str, matched: int, now: float) -> None:
        """A camera is deaf once its subscription has been matched with a publisher for CAMERA_SILENT_S
        without a message (not even an unusable one) since then; no longer at its next message, or when no
        publisher is matched (the camera is gone: a new process would not hear it either)."""
        if not matched:
            self._matched_since.pop(camera, None)
            self.deaf.discard(camera)
            return
        since = max(self._matched_since.setdefault(camera, now), self.heard.get(camera, -float("inf")))
        if now - since >= CAMERA_SILENT_S:
            self.deaf.add(camera)
