"""The lifecycle manager against a managed node whose service answers get lost (as they do while DDS
discovery is still matching the two sides): it asks again, or checks where the node is, and the
startup completes instead of waiting out `transition_timeout_s`."""

from __future__ import annotations

import threading

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

TRANSITIONS = {
    Transition.TRANSITION_CONFIGURE: (State.PRIMARY_STATE_UNCONFIGURED, State.PRIMARY_STATE_INACTIVE),
    Transition.TRANSITION_ACTIVATE: (State.PRIMARY_STATE_INACTIVE, State.PRIMARY_STATE_ACTIVE),
}


class ForgetfulNode:
    """A managed node's two lifecycle services. The first `lose_get` get_state answers and the first
    `lose_change` change_state answers never come (their callbacks block until `release`); with
    `apply_lost` False a change_state whose answer is lost is not applied either (a lost request);
    with `refuse` every transition fails, as a configure does on a missing checkpoint."""

    def __init__(self, rclpy, name: str, lose_get=0, lose_change=0, apply_lost=True, refuse=False):
        from rclpy.callback_groups import ReentrantCallbackGroup

        self.node = rclpy.create_node(name)
        self.state = State.PRIMARY_STATE_UNCONFIGURED
        self.release = threading.Event()
        self.requests = {"get_state": 0, "change_state": 0}
        self._lose = {"get_state": lose_get, "change_state": lose_change}
        self._apply_lost = apply_lost
        self._refuse = refuse
        group = ReentrantCallbackGroup()
        self.node.create_service(GetState, f"/{name}/get_state", self._get, callback_group=group)
        self.node.create_service(ChangeState, f"/{name}/change_state", self._change, callback_group=group)

    def _lost(self, service: str) -> bool:
        self.requests[service] += 1
        return self.requests[service] <= self._lose[service]

    def _get(self, _req, res):
        if self._lost("get_state"):
            self.release.wait(60)
        res.current_state.id = self.state
        return res

    def _change(self, req, res):
        source, target = TRANSITIONS[req.transition.id]
        lost = self._lost("change_state")
        if (not lost or self._apply_lost) and self.state == source and not self._refuse:
            self.state = target
            res.success = True
        if lost:
            self.release.wait(60)
        return res


@pytest.fixture
def ros(ros_env):
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    rclpy.init(args=[])
    executor = MultiThreadedExecutor(num_threads=6)
    threading.Thread(target=executor.spin, daemon=True).start()
    made = []

    def add(node):
        made.append(node)
        executor.add_node(node.node if isinstance(node, ForgetfulNode) else node)
        return node

    yield rclpy, add
    for node in made:
        if isinstance(node, ForgetfulNode):
            node.release.set()
    executor.shutdown(timeout_sec=5)
    rclpy.shutdown()


def manager_for(name: str):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.lifecycle_manager import LifecycleManager

    return LifecycleManager(
        parameter_overrides=[
            Parameter("node_names", value=[name]),
            Parameter("autostart", value=False),
            Parameter("transition_timeout_s", value=30.0),
        ]
    )


@pytest.mark.parametrize(
    "lose_get, lose_change, apply_lost",
    [
        (1, 0, True),  # the first get_state answer is lost: asked again
        (0, 1, True),  # configure ran but its answer is lost: get_state shows it done
        (0, 1, False),  # the configure request itself is lost: get_state shows it not done, sent again
        (2, 2, True),  # both, and twice
    ],
)
def test_startup_completes_when_service_answers_are_lost(ros, lose_get, lose_change, apply_lost):
    rclpy, add = ros
    managed = add(ForgetfulNode(rclpy, "forgetful", lose_get, lose_change, apply_lost))
    manager = add(manager_for("forgetful"))
    assert manager.startup(), manager.result
    assert managed.state == State.PRIMARY_STATE_ACTIVE
    assert managed.requests["get_state"] > lose_get
    assert managed.requests["change_state"] >= 2 + (0 if apply_lost else lose_change)


def test_a_node_that_refuses_a_transition_fails_the_startup_without_asking_again(ros):
    rclpy, add = ros
    managed = add(ForgetfulNode(rclpy, "refusing", refuse=True))
    manager = add(manager_for("refusing"))
    assert not manager.startup()
    assert manager.result == "startup failed: refusing failed to configure (its log says why)"
    assert managed.requests["change_state"] == 1
    assert managed.state == State.PRIMARY_STATE_UNCONFIGURED
