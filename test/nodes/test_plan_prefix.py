"""The policy node continues only the plan that is running now (guided blending, real nodes over DDS).

Between two demo episodes the policy is deactivated, the sim reset and the policy activated again
within less than `max_observation_age_s`: the plan prefix held from the previous episode must not
guide the first chunk of the next one (it froze that chunk to the previous episode's end pose).
"""

import threading
import time

import numpy as np
from conftest import wait_until
from trajectory_msgs.msg import JointTrajectory

from vla_ros.nodes.conversions import plan_to_trajectory

PLAN_Q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])


def policy_counts(peer, state: str | None = None) -> tuple[int, int] | None:
    """(chunks_published, chunks_guided) from the policy's newest diagnostics (in lifecycle `state`)."""
    for array in reversed(peer.diagnostics):
        for status in array.status:
            if "policy" in status.name and (state is None or status.message == state):
                values = {kv.key: kv.value for kv in status.values}
                return int(values["chunks_published"]), int(values["chunks_guided"])
    return None


def test_a_prefix_from_before_activation_or_withdrawn_does_not_guide(nodes):
    bringup, peer, _ = nodes(policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.1})
    prefix_pub = peer.node.create_publisher(JointTrajectory, "plan_prefix", 10)
    publishing = threading.Event()
    stop = threading.Event()

    def publish_prefix():  # the executor's plan ahead at 20 Hz: PLAN_Q held for 1 s from now
        end = time.monotonic() + 120.0
        while not stop.is_set() and time.monotonic() < end:
            if publishing.is_set():
                now = peer.node.get_clock().now().nanoseconds * 1e-9
                times = now + np.array([0.0, 0.5, 1.0])
                prefix_pub.publish(plan_to_trajectory(peer.joint_names, times, np.repeat(PLAN_Q[None], 3, 0)))
            time.sleep(0.05)

    threading.Thread(target=publish_prefix, daemon=True).start()
    try:
        peer.q = PLAN_Q.copy()
        peer.start_robot(rate_hz=50)
        publishing.set()
        assert wait_until(lambda: (policy_counts(peer) or (0, 0))[1] > 2, 60), "the policy never used the prefix"

        # deactivate while the plan is still published, then withdraw it and activate at once
        assert peer.change_state("vla_policy", "deactivate")
        peer.diagnostics.clear()
        assert wait_until(lambda: policy_counts(peer, "inactive") is not None, 5)
        published, guided = policy_counts(peer, "inactive")
        publishing.clear()
        assert peer.change_state("vla_policy", "activate")
        assert wait_until(lambda: (policy_counts(peer, "active") or (0, 0))[0] >= published + 3, 30)
        assert policy_counts(peer, "active")[1] == guided, "a plan from before activation guided a chunk"

        # a prefix with no points: the executor has no plan any more
        publishing.set()
        assert wait_until(lambda: (policy_counts(peer) or (0, 0))[1] > guided + 2, 30), "prefix not used again"
        publishing.clear()
        prefix_pub.publish(JointTrajectory(joint_names=list(peer.joint_names)))
        time.sleep(0.3)  # the chunk inferring when it arrived is published
        peer.diagnostics.clear()
        assert wait_until(lambda: policy_counts(peer) is not None, 5)
        published, guided = policy_counts(peer)
        assert wait_until(lambda: policy_counts(peer)[0] >= published + 3, 30)
        assert policy_counts(peer)[1] == guided, "a withdrawn plan guided a chunk"
        assert bringup.dead() == {}
    finally:
        stop.set()
