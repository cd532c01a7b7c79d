"""Tasks that survive a restart of the policy process (ROS-free; the policy node and the lifecycle manager
carry it over ROS, nodes/supervision.py).

The policy publishes the task it holds (`TaskState`) whenever it changes: an instruction accepted, the task
cleared, a task taken over after a restart. The lifecycle manager, a process that outlives a crashed policy,
keeps the last one and hands it to the next process of the same node. That process decides once
(`TaskRestore`): with `resume_after_restart` it takes the task over and infers from its own, fresh,
observations; without, it holds until a new instruction; a task cleared before the restart stays cleared.
An instruction or a clear given to the new process before its predecessor's state arrives wins over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# what made a task state
SET, CLEARED, STARTED, RESUMED, NOT_RESUMED = "set", "cleared", "started", "resumed", "not_resumed"


@dataclass(frozen=True)
class TaskState:
    """The task one policy process holds: `instruction` ('' = none: never set or cleared), the `process` that
    holds it (nodes/supervision.process_token), the `event` that made it and the `restarts` of the node that
    process has seen (its predecessors)."""

    instruction: str
    process: str
    event: str
    restarts: int = 0

    def values(self) -> dict[str, str]:
        return {
            "instruction": self.instruction,
            "process": self.process,
            "event": self.event,
            "restarts": str(self.restarts),
        }

    @classmethod
    def from_values(cls, values: dict[str, str]) -> TaskState | None:
        """The state in `values` (None if they are not one)."""
        try:
            return cls(values["instruction"], values["process"], values["event"], int(values.get("restarts", "0")))
        except (KeyError, ValueError):
            return None


class TaskRestore:
    """What one policy process (`process`) takes over from its predecessor's task state: decided once.

    `resume()`: the current value of `resume_after_restart`. `outcome` says what happened, for /diagnostics.
    """

    def __init__(self, process: str, resume: Callable[[], bool]):
        self.process, self.resume = process, resume
        self.settled = False  # this process has decided its task (predecessor's state seen, or an operator's)
        self.restarts = 0  # restarts of this node seen: the predecessor's count + 1
        self.outcome = "no restart seen"

    def operator_changed(self) -> None:
        """An instruction or a clear given to this process: a predecessor's state arriving later is older news."""
        self.settled = True

    def start_fresh(self) -> bool:
        """Activation without a predecessor's state: a first start (True if this decided it)."""
        if self.settled:
            return False
        self.settled = True
        return True

    def on_predecessor(self, held: TaskState) -> str | None:
        """The instruction to take from a predecessor's `held` state ('' = no task), or None when it does not
        apply: this process's own state coming back, or this process has decided already."""
        if held.process == self.process or self.settled:
            return None
        self.settled = True
        self.restarts = held.restarts + 1
        if not held.instruction:
            self.outcome = "restarted: no task to resume (cleared or not set before the restart)"
            return ""
        if self.resume():
            self.outcome = f"restarted: resumed '{held.instruction}'"
            return held.instruction
        self.outcome = f"restarted: '{held.instruction}' not resumed (resume_after_restart is false)"
        return ""
