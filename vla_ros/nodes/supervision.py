"""What the lifecycle manager and its managed nodes exchange besides the lifecycle services.

- `~/heartbeat` (diagnostic_msgs/DiagnosticStatus, every HEARTBEAT_PERIOD_S): published by a timer of the node's
  own executor, so it stops when the node stops answering (nav2's bond, one way). `hardware_id` is the
  process (`process_token`: host, pid and start time), `message` the lifecycle state. A transition that holds
  the executor for long (configure loading a model) beats from a thread of its own meanwhile (`busy`).
- `~/instruction_state` (DiagnosticStatus, transient local): the task the policy holds (core/task_memory.py),
  published on every change; the lifecycle manager keeps the last one and hands it back on the node's
  `~/instruction_held` (transient local) to the next process of that node.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vla_ros.core.task_memory import TaskState

HEARTBEAT_PERIOD_S = 0.25  # seconds between heartbeats
HEARTBEAT_QOS = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT
)  # a late heartbeat is worth nothing
LATCHED_QOS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)  # a subscriber that joins later gets the last message at once


def _start_time(pid: int | str = "self") -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def process_token() -> str:
    """This process, as `host:pid:start`: unique over pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time() or time.time_ns()}"


def local_pid(token: str) -> int | None:
    """The pid of the process `token` names, if it runs on this host and is still that process; else None."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    return pid if _start_time(pid) == parts[2] else None


@dataclass(frozen=True)
class Hearing:
    """What a node hears on the input topics it watches (resolved topic names): `deaf`, matched with a publisher
    yet nothing received for the node's silence window while it needs them; `heard`, a message within it."""

    deaf: frozenset[str] = frozenset()
    heard: frozenset[str] = frozenset()

    def values(self) -> list[KeyValue]:
        return [
            KeyValue(key=key, value=",".join(sorted(topics)))
            for key, topics in (("deaf_topics", self.deaf), ("heard_topics", self.heard))
            if topics
        ]

    @classmethod
    def from_msg(cls, msg: DiagnosticStatus) -> Hearing:
        values = {kv.key: kv.value for kv in msg.values}

        def topics(key: str) -> frozenset[str]:
            return frozenset(t for t in values.get(key, "").split(",") if t)

        return cls(topics("deaf_topics"), topics("heard_topics"))


class Heartbeat:
    """`~/heartbeat` of `node` (a LifecycleNode) every HEARTBEAT_PERIOD_S from a timer of its executor, with what
    `hearing()` says when given."""

    def __init__(self, node, process: str, hearing: Callable[[], Hearing] | None = None):
        self.node, self.process, self.hearing = node, process, hearing
        self.pub = node.create_publisher(DiagnosticStatus, "~/heartbeat", HEARTBEAT_QOS)
        self.timer = node.create_timer(HEARTBEAT_PERIOD_S, self.beat)
        self.name = node.get_fully_qualified_name()

    def beat(self) -> None:
        state = self.node._state_machine.current_state[1]  # rclpy keeps the label there
        hearing = self.hearing().values() if self.hearing else []
        self.pub.publish(
            DiagnosticStatus(
                name=self.name,
                hardware_id=self.process,
                message=state,
                values=[KeyValue(key="pid", value=str(os.getpid())), *hearing],
            )
        )

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Beat from a thread of its own while the block holds the node's executor (a transition loading a model):
        a slow transition is not a hang (its own timeout, the manager's transition_timeout_s, covers it)."""
        stop = threading.Event()
        thread = threading.Thread(target=lambda: _beat_until(stop, self.beat), name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2 * HEARTBEAT_PERIOD_S)


def _beat_until(stop: threading.Event, beat: Callable[[], None]) -> None:
    while not stop.wait(HEARTBEAT_PERIOD_S):
        beat()


def task_state_msg(name: str, state: TaskState) -> DiagnosticStatus:
    """The message of the task a policy node (`name`) holds."""
    return DiagnosticStatus(
        name=name,
        hardware_id=state.process,
        message=state.instruction,
        values=[KeyValue(key=k, value=v) for k, v in state.values().items()],
    )


def task_state_from_msg(msg: DiagnosticStatus) -> TaskState | None:
    return TaskState.from_values({kv.key: kv.value for kv in msg.values})
