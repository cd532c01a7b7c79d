"""The policy node's task (its `instruction`) over ROS, and across restarts of its process.

The node's `instruction` parameter is the task. Every change of it is published on `~/instruction_state`
(transient local); the lifecycle manager keeps the last one and hands it back on `~/instruction_held` to the
next process of the node, which decides once what to take over (core/task_memory.py `TaskRestore`).
`~/clear_task` (Trigger) clears the task; a restart keeps it cleared.
"""

from __future__ import annotations

from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from vla_ros.core.task_memory import CLEARED, NOT_RESUMED, RESUMED, SET, STARTED, TaskRestore, TaskState
from vla_ros.nodes.supervision import LATCHED_QOS, task_state_from_msg, task_state_msg


class PolicyTask:
    """The task of `node` (a LifecycleNode with an `instruction` and a `resume_after_restart` parameter).

    `problem(text)`: why an instruction is refused (None: accepted); `apply(text)`: hand the accepted task
    to the loop. `process`: this process's token (nodes/supervision.process_token).
    """

    def __init__(self, node, process: str, problem: Callable[[str], str | None], apply: Callable[[str], None]):
        self.node, self.process, self.problem, self.apply = node, process, problem, apply
        self.instruction = ""
        self.restore = TaskRestore(process, lambda: node.get_parameter("resume_after_restart").value)
        self._internal_change = False  # the node itself sets `instruction` (a restored or cleared task)
        self.pub = node.create_publisher(DiagnosticStatus, "~/instruction_state", LATCHED_QOS)
        node.create_subscription(DiagnosticStatus, "~/instruction_held", self._on_held, LATCHED_QOS)
        node.create_service(Trigger, "~/clear_task", self._srv_clear_task)

    def start_with(self, text: str) -> None:
        """The task given at launch (ValueError naming the parameter if refused); a predecessor's task state,
        should one come, still decides (the launch value is the node's default, not an operator's change)."""
        reason = self.problem(text)
        if reason:
            raise ValueError(f"parameter instruction: {reason}")
        self._take(text)
        self.node.get_logger().info(f"instruction: '{text}'")

    def on_parameter(self, value: str) -> str | None:
        """A new value of the `instruction` parameter: the reason it is refused, or None once it is the task."""
        if not self._internal_change:
            reason = self.problem(value)
            if reason:
                return reason
            self.restore.operator_changed()
        self._take(value)
        if not self._internal_change:
            self.node.get_logger().info(f"instruction: '{value}'")
            self._publish(SET)
        return None

    def on_activate(self) -> None:
        if self.restore.start_fresh():  # no predecessor's task state came: a first start
            self._publish(STARTED)

    def clear(self) -> str:
        """Clear the task (the operator's decision: a restart keeps it cleared); the task it was."""
        was = self.instruction
        self._set("")
        self.restore.operator_changed()
        self._publish(CLEARED)
        self.node.get_logger().info(f"task cleared (was '{was}'): no chunks until a new instruction")
        return was

    def diagnostics(self) -> dict:
        return {
            "restarts_seen": self.restore.restarts,
            "task_after_restart": self.restore.outcome,
            "resume_after_restart": self.node.get_parameter("resume_after_restart").value,
        }

    def _take(self, text: str) -> None:
        self.instruction = text
        self.apply(text)

    def _set(self, text: str) -> None:
        """Set the task (and the `instruction` parameter) as the node decided it: '' = none."""
        self._internal_change = True
        try:
            self.node.set_parameters([Parameter("instruction", Parameter.Type.STRING, text)])
        finally:
            self._internal_change = False

    def _publish(self, event: str) -> None:
        state = TaskState(self.instruction, self.process, event, self.restore.restarts)
        self.pub.publish(task_state_msg(self.node.get_name(), state))

    def _on_held(self, msg: DiagnosticStatus) -> None:
        """The task state the lifecycle manager kept from this node's previous process (or this one's own)."""
        log = self.node.get_logger()
        held = task_state_from_msg(msg)
        if held is None:
            log.error(f"ignoring a held task state without its keys: {msg}")
            return
        settled_before = self.restore.settled
        text = self.restore.on_predecessor(held)
        if text is None:
            if held.process != self.process and settled_before:
                log.warning(
                    f"the task state of a previous process ('{held.instruction}') came after this one had its own task "
                    f"('{self.instruction}'): kept its own"
                )
            return
        self._set(text)
        self._publish(RESUMED if text else (NOT_RESUMED if held.instruction else CLEARED))
        then = "; its first chunks come from observations taken from now on" if text else "; waiting for an instruction"
        log.warning(f"{self.restore.outcome} (restarts seen: {self.restore.restarts}){then}")

    def _srv_clear_task(self, _req, res):
        was = self.clear()
        res.success = True
        res.message = f"task cleared (was '{was}'): no chunks until a new instruction; a restart keeps it cleared"
        return res
