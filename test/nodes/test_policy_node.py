"""policy_node as a real process over DDS: instruction gating, chunk format, staleness, bad input."""

import time

import numpy as np
import pytest
from conftest import log_text, wait_until
from tracking import bring_up_tracking


def test_no_chunk_before_an_instruction_then_timed_chunks_until_deactivated(nodes):
    bringup, peer, specs = nodes()
    peer.start_robot()
    assert peer.wait_active("vla_policy", "vla_chunk_executor"), log_text(bringup.log_dir.parent, "vla_policy")
    assert not wait_until(lambda: peer.chunks, 1.5), "a chunk was published without an instruction"

    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 3, 20), (
        f"no chunks; policy log:\n{log_text(bringup.log_dir.parent, 'vla_policy')}"
    )
    msg = peer.chunks[-1]
    assert list(msg.joint_names) == peer.specs["vla_policy"].parameters["joint_names"]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    assert min(abs(stamp - s) for s in peer.published_stamps) < 1e-6, "header.stamp is not an observation stamp"
    offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(offsets, 0.1 * np.arange(1, len(msg.points) + 1), atol=1e-6)

    assert peer.change_state("vla_policy", "deactivate")
    n = len(peer.chunks)
    assert not wait_until(lambda: len(peer.chunks) > n, 1.0), "chunks kept coming after deactivate"
    assert peer.change_state("vla_policy", "activate")
    assert wait_until(lambda: len(peer.chunks) > n, 10), "no chunks after activating again"
    assert bringup.dead() == {}


def test_instruction_is_validated_by_the_parameter_service_and_the_topic(nodes):
    from std_msgs.msg import String

    bringup, peer, _ = nodes()
    empty = peer.set_param("vla_policy", "instruction", "   ")
    assert not empty.successful and "empty" in empty.reason
    long = peer.set_param("vla_policy", "instruction", "x" * 300)
    assert not long.successful and "300 characters" in long.reason
    pub = peer.node.create_publisher(String, "instruction", 10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    pub.publish(String(data="reach the blue cube"))
    assert wait_until(
        lambda: "instruction: 'reach the blue cube'" in log_text(bringup.log_dir.parent, "vla_policy"), 10
    )


def test_no_chunk_from_a_stale_observation_when_the_camera_stops(nodes):
    bringup, peer, _ = nodes(policy_overrides={"max_observation_age_s": 0.3})
    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 20)
    peer.publish_images = False
    time.sleep(0.6)  # past max_observation_age_s (+ one inference in flight)
    n = len(peer.chunks)
    assert not wait_until(lambda: len(peer.chunks) > n, 1.5), "published a chunk from a stale camera frame"
    assert wait_until(lambda: "image is" in log_text(bringup.log_dir.parent, "vla_policy"), 5)
    peer.publish_images = True
    assert wait_until(lambda: len(peer.chunks) > n, 10), "did not resume when the camera came back"


def test_a_camera_silent_while_active_is_reported_with_its_publishers(nodes):
    """A camera silent for CAMERA_SILENT_S while active: one warning per camera naming the topic and the
    publishers its subscription is matched with, counted; inference resumes once the camera is back."""
    from faults import diagnostics

    from vla_ros.nodes.policy_cameras import CAMERA_SILENT_S

    bringup, peer, _ = nodes()
    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 2, 20)
    peer.publish_images = False
    log = lambda: log_text(bringup.log_dir.parent, "vla_policy")  # noqa: E731
    for camera, topic in (("front", "camera/image_raw"), ("wrist", "wrist_camera/image_raw")):
        line = f"camera '{camera}': no usable frame on '{topic}' for "
        assert wait_until(lambda line=line: line in log(), CAMERA_SILENT_S + 10), log()
    assert "subscription matched with 1 publisher(s), 1 in the ROS graph; camera_silences: " in log()
    assert wait_until(lambda: int(diagnostics(peer, "vla_policy: policy").get("camera_silences", 0)) >= 2, 5), (
        diagnostics(peer, "vla_policy: policy")
    )
    n = len(peer.chunks)
    peer.publish_images = True
    assert wait_until(lambda: len(peer.chunks) > n + 2, 15), "no chunks once the cameras were back"
    assert bringup.dead() == {}


def test_malformed_image_and_unknown_encoding_are_logged_and_survived(nodes):
    from sensor_msgs.msg import Image

    bringup, peer, _ = nodes(policy_overrides={})
    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert wait_until(lambda: len(peer.chunks) >= 1, 20)
    bad = Image(height=32, width=32, encoding="rgb8", step=96, data=bytes(100))  # too short
    weird = Image(height=2, width=2, encoding="yuv422_weird", step=8, data=bytes(16))
    for msg in (bad, weird):
        msg.header.stamp = peer.now_msg()
        peer.img_pubs["front"].publish(msg)
    log = lambda: log_text(bringup.log_dir.parent, "vla_policy")  # noqa: E731
    assert wait_until(
        lambda: "expected at least step*height" in log() and "'yuv422_weird' encoding is not supported" in log(), 10
    ), log()
    n = len(peer.chunks)
    assert wait_until(lambda: len(peer.chunks) > n, 10), "policy stopped producing chunks after bad frames"
    assert bringup.dead() == {}


def test_compressed_camera_topics_are_decoded(nodes):
    from sensor_msgs.msg import CompressedImage

    from vla_ros.core.images import encode_compressed

    bringup, peer, _ = nodes(
        policy_overrides={
            "camera_topics": ["camera/image_raw/compressed", "wrist_camera/image_raw"],
        }
    )
    pub = peer.node.create_publisher(CompressedImage, "camera/image_raw/compressed", 2)
    jpeg = encode_compressed(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8), "jpeg")
    peer.img_pubs = {"wrist": peer.img_pubs["wrist"]}  # the front camera now comes compressed

    def frames():
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg)
        msg.header.stamp = peer.now_msg()
        pub.publish(msg)

    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    deadline = time.monotonic() + 20
    while len(peer.chunks) < 2 and time.monotonic() < deadline:
        frames()
        time.sleep(0.05)
    assert len(peer.chunks) >= 2, log_text(bringup.log_dir.parent, "vla_policy")


def test_camera_loss_makes_the_executor_hold_through_the_whole_chain(nodes):
    bringup, peer, _ = nodes(
        policy_overrides={"max_observation_age_s": 0.3}, executor_overrides={"plan_timeout_s": 0.3}
    )
    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful

    def executor_state():
        states = [s.message for d in peer.diagnostics[-3:] for s in d.status if "executor" in s.name]
        return states[-1] if states else None

    assert wait_until(lambda: executor_state() == "tracking", 20), "executor never tracked a chunk"
    peer.publish_images = False
    # no fresh frame -> no chunk -> the plan runs out -> hold
    # (horizon 0.4 s + plan_timeout 0.3 s + a diagnostics period)
    assert wait_until(lambda: executor_state() == "holding", 5)
    held = peer.commands[-1][1]
    time.sleep(0.3)
    np.testing.assert_allclose(peer.commands[-1][1], held, atol=1e-9)
    assert bringup.dead() == {}


@pytest.mark.parametrize("checkpoint", ["tiny_pi0_checkpoint", "tiny_pi05_checkpoint"], ids=["pi0", "pi05"])
def test_a_tiny_pi0_runs_through_the_real_nodes(nodes, checkpoint, request):
    """backend:=pi0 with a π₀ and a π₀.5 checkpoint in the real key layout: chunks flow and the executor tracks
    them (guided blending)."""
    bringup, peer, _ = bring_up_tracking(
        nodes,
        0.1,
        executor_overrides={"blend_mode": "guided"},
        backend="pi0",
        model_path=request.getfixturevalue(checkpoint),
    )
    msg = peer.chunks[-1]
    assert list(msg.joint_names) == list(peer.joint_names) and len(msg.points) == 8
    assert np.all(np.isfinite([p.positions for p in msg.points]))
    assert bringup.dead() == {}
