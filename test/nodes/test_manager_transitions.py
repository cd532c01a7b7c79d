"""The lifecycle manager when another client changes a node's state between its get_state and its change_state
(the soak's supervisor activating a respawned policy as the manager does): the node refuses the transition
because it is there already, and the manager takes that as done instead of reporting a failed restart. Real
rclpy nodes over DDS on loopback."""

from __future__ import annotations

import threading

from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import ChangeState, GetState


class ActivatedMeanwhile:
    """A managed node's two services: `inactive` until a change_state arrives; that request finds it `active`
    already (another client was first) and is refused."""

    def __init__(self, rclpy, name: str):
        from rclpy.callback_groups import ReentrantCallbackGroup

        self.node = rclpy.create_node(name)
        self.state = State.PRIMARY_STATE_INACTIVE
        self.refused = 0
        group = ReentrantCallbackGroup()
        self.node.create_service(GetState, f"/{name}/get_state", self._get, callback_group=group)
        self.node.create_service(ChangeState, f"/{name}/change_state", self._change, callback_group=group)

    def _get(self, _req, res):
        res.current_state.id = self.state
        return res

    def _change(self, _req, res):
        self.state = State.PRIMARY_STATE_ACTIVE  # the other client's activate ran first
        self.refused += 1
        res.success = False  # rcl_lifecycle: no 'activate' transition from 'active'
        return res


def test_a_transition_refused_because_another_client_ran_it_counts_as_done(ros_env):
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from vla_ros.nodes.lifecycle_manager import LifecycleManager

    rclpy.init(args=[])
    executor = MultiThreadedExecutor(num_threads=4)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        managed = ActivatedMeanwhile(rclpy, "raced")
        executor.add_node(managed.node)
        manager = LifecycleManager(
            parameter_overrides=[
                Parameter("node_names", value=["raced"]),
                Parameter("autostart", value=False),
                Parameter("transition_timeout_s", value=30.0),
            ]
        )
        executor.add_node(manager)
        manager.transition("raced", "activate")  # no RuntimeError
        assert managed.refused == 1 and managed.state == State.PRIMARY_STATE_ACTIVE
    finally:
        executor.shutdown(timeout_sec=5)
        rclpy.shutdown()
