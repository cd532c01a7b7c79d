"""`lifecycle_manager` (node `vla_lifecycle_manager`): brings the managed nodes up, as nav2's does.

With `autostart` it configures every node of `node_names` in order, then activates them (the
executor first, so it commands from the measured position before any chunk arrives). A node that
fails a transition is reported (its own log says why) and the others are not activated.
With `autostart` it then watches the nodes (`get_state` every `watch_period_s`): a node that stops
answering is reported as lost; one that answers again in `unconfigured` (a restarted process, e.g.
the bring-up's `respawn`) is configured and activated again. A node that answers throughout is left
as it is (a `cleanup` by an operator stands). A startup that timed out (a node not answering, not one
refusing) is run again once every node answers.
Service answers can be lost while DDS discovery is still matching the two sides: calls go through
`service_calls` (get_state asked again, a change_state without answer checked with get_state).
Services: `~/startup` (configure + activate all), `~/shutdown` (deactivate in reverse order, then
clean up) — std_srvs/Trigger. Transitions go through each node's standard `~/change_state`.
"""

from __future__ import annotations

import sys
import threading
import time

from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import run_node
from vla_ros.nodes.service_calls import TRANSITIONS, change_state, get_state
from vla_ros.params import MANAGER


class LifecycleManager(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_lifecycle_manager", **kwargs)
        self.p = declare(self, MANAGER)
        group = ReentrantCallbackGroup()
        self.nodes = [n for n in self.p["node_names"] if n]
        self._change = {
            n: self.create_client(ChangeState, f"/{n}/change_state", callback_group=group) for n in self.nodes
        }
        self._get = {n: self.create_client(GetState, f"/{n}/get_state", callback_group=group) for n in self.nodes}
        self.create_service(Trigger, "~/startup", self._srv_startup, callback_group=group)
        self.create_service(Trigger, "~/shutdown", self._srv_shutdown, callback_group=group)
        self._busy = threading.Lock()
        self.result: str | None = None  # the last startup/shutdown outcome
        self.lost: set[str] = set()  # nodes that stopped answering get_state
        self._timed_out = False  # the last startup/shutdown failed on a node not answering (not refusing)
        if self.p["autostart"]:
            threading.Thread(target=self._autostart, name="autostart", daemon=True).start()

    def _autostart(self) -> None:
        up = self.startup()
        while self.context.ok() and self.p["watch_period_s"] > 0:
            time.sleep(self.p["watch_period_s"])
            for node in self.nodes:
                self._watch(node)
            if not up and self._timed_out and not self.lost:
                self.get_logger().warning("startup timed out earlier and every node answers now: starting up again")
                up = self.startup()

    def _watch(self, node: str) -> None:
        """Report a node that stopped answering; bring it up again when it is back, unconfigured."""
        try:
            state = self.state(node, timeout_s=max(0.5, self.p["watch_period_s"]))
        except (TimeoutError, RuntimeError):
            if node not in self.lost:
                self.lost.add(node)
                self.get_logger().error(
                    f"{node}: lost (no answer to get_state); it is brought up again if it comes back"
                )
            return
        if node in self.lost and state == State.PRIMARY_STATE_UNCONFIGURED:
            self.get_logger().warning(f"{node}: back (restarted, unconfigured): configuring and activating it")
            if self._run([(node, "configure"), (node, "activate")], f"restart of {node}"):
                self.lost.discard(node)
        elif node in self.lost:
            self.lost.discard(node)

    # --- transitions ---------------------------------------------------------------------
    def state(self, node: str, timeout_s: float | None = None) -> int:
        """The node's lifecycle state id (asked again while answers are lost: service_calls)."""
        return get_state(self._get[node], timeout_s or self.p["transition_timeout_s"], self.context.ok)

    def transition(self, node: str, step: str) -> None:
        """Run `step` on `node` unless it is already past it; RuntimeError if the node refuses."""
        current = self.state(node)
        if current == TRANSITIONS[step][2]:
            return
        ok = change_state(
            self._change[node],
            self._get[node],
            step,
            self.p["transition_timeout_s"],
            self.context.ok,
            self.get_logger().warning,
        )
        if not ok:
            raise RuntimeError(f"{node} failed to {step} (its log says why)")
        self.get_logger().info(f"{node}: {step}d")

    def startup(self) -> bool:
        """Configure all nodes, then activate all; False (reported) on the first failure."""
        return self._run([(n, "configure") for n in self.nodes] + [(n, "activate") for n in self.nodes], "startup")

    def shutdown(self) -> bool:
        """Deactivate in reverse order (the executor last: it brakes to rest), then clean up."""
        order = list(reversed(self.nodes))
        return self._run([(n, "deactivate") for n in order] + [(n, "cleanup") for n in order], "shutdown")

    def _run(self, steps: list[tuple[str, str]], what: str) -> bool:
        with self._busy:
            try:
                for node, step in steps:
                    self.transition(node, step)
            except (RuntimeError, TimeoutError) as exc:
                self._timed_out = isinstance(exc, TimeoutError)
                self.result = f"{what} failed: {exc}"
                self.get_logger().error(self.result)
                return False
            self.result = f"{what} done: {self.nodes}"
            self.get_logger().info(self.result)
            return True

    # --- services ------------------------------------------------------------------------
    def _srv_startup(self, _req, res):
        res.success = self.startup()
        res.message = self.result or ""
        return res

    def _srv_shutdown(self, _req, res):
        res.success = self.shutdown()
        res.message = self.result or ""
        return res


def main(args=None) -> int:
    return run_node(LifecycleManager, "vla_lifecycle_manager", (ValueError,), args, multithreaded=True)


if __name__ == "__main__":
    sys.exit(main())
