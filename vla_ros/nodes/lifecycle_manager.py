"""`lifecycle_manager` (node `vla_lifecycle_manager`): brings the managed nodes up, as nav2's does.

With `autostart` it configures every node of `node_names` in order, then activates them (the
executor first, so it commands from the measured position before any chunk arrives). A node that
fails a transition is reported (its own log says why) and the others are not activated. A node
already at or past a step (configure or activate) is left as it is: a manager that was itself
restarted (killed, respawned) adopts its running nodes without a transition, and takes the policy's
task state from its latched `~/instruction_state`.
With `autostart` it then watches the nodes (`get_state` every `watch_period_s`): a node that stops
answering is reported as lost; one that answers again in `unconfigured` (a restarted process, e.g.
the bring-up's `respawn`) is configured and activated again. A node that answers throughout is left
as it is (a `cleanup` by an operator stands). A startup that timed out (a node not answering, not one
refusing) is run again once every node answers.
Service answers can be lost while DDS discovery is still matching the two sides: calls go through
`service_calls` (get_state asked again, a change_state without answer checked with get_state).
Services: `~/startup` (configure + activate all), `~/shutdown` (deactivate in reverse order, then
clean up) — std_srvs/Trigger. Transitions go through each node's standard `~/change_state`.

Liveness (nodes/supervision.py): a node that publishes `~/heartbeat` and stops for `liveness_timeout_s`,
or whose process beats in a primary state but has answered no `get_state` for `liveness_timeout_s` +
DEAF_GRACE_S (deaf: it sends but receives nothing, as policy processes respawned after a SIGSTOP + SIGKILL
did in soaks, on shared memory and on UDP; the cause is not established), or whose heartbeat has said for
`liveness_timeout_s` that it is deaf to a topic (matched with a publisher, it receives nothing: the policy's
cameras, as soak respawns were) is unresponsive: it gets SIGUSR1 (every thread's Python stack to its log)
and, with `kill_unresponsive` (the bring-up sets it with respawn), SIGKILL, so that respawn starts a new
process, brought up here like any restarted node; without, it is reported and left (the executor holds the
arm once the plan runs out). Only a process on this host whose start time matches its heartbeat's is
signalled. A process replaced for a deaf topic is replaced once: when the next one is deaf to that topic
too, the publisher sends nothing (a hung or stalled camera driver); that is reported, not acted on, until a
process hears the topic.
Tasks: the last `~/instruction_state` of each node is kept here and handed back on its
`~/instruction_held` (transient local) to the node's next process; a restarted node is configured
once it has taken it (at most TASK_HANDOVER_S). `/diagnostics` (`vla_lifecycle_manager: lifecycle`):
per node its state, restarts seen, heartbeat age and unresponsive count.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import STACKS_SIGNAL, run_node
from vla_ros.nodes.service_calls import TRANSITIONS, change_state, get_state
from vla_ros.nodes.supervision import (
    HEARTBEAT_PERIOD_S,
    HEARTBEAT_QOS,
    LATCHED_QOS,
    Hearing,
    local_pid,
    task_state_from_msg,
)
from vla_ros.params import MANAGER

# a managed node's primary states, in the order startup takes it through them
STATE_NAMES = {
    State.PRIMARY_STATE_UNCONFIGURED: "unconfigured",
    State.PRIMARY_STATE_INACTIVE: "inactive",
    State.PRIMARY_STATE_ACTIVE: "active",
}
STATE_ORDER = {state: i for i, state in enumerate(STATE_NAMES)}
TASK_HANDOVER_S = 5.0  # longest wait for a restarted node to take its predecessor's task state before configuring it
STACKS_WAIT_S = 0.5  # between SIGUSR1 (stacks to the log) and SIGKILL


PRIMARY_LABELS = ("unconfigured", "inactive", "active", "finalized")  # not in a transition (configure may be long)
DEAF_GRACE_S = 10.0  # more than liveness_timeout_s before a beating node that answers nothing is deaf: a new process's
# first answers wait for DDS discovery (its first heartbeat -> first get_state answer: up to ~4 s seen under load)


@dataclass(frozen=True)
class Beat:
    """A node's last heartbeat: when it arrived (monotonic s), from which process, in which lifecycle state,
    when that process's first heartbeat arrived (monotonic s), what it hears, and since when (monotonic s) that
    process has said it is deaf to a topic (None: it does not)."""

    at: float
    process: str
    state: str
    first_at: float
    hearing: Hearing = Hearing()
    deaf_since: float | None = None


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
        self._lost_since: dict[str, float] = {}  # node -> since when it answers no get_state here (monotonic s)
        self._timed_out = False  # the last startup/shutdown failed on a node not answering (not refusing)
        self.restarts: Counter = Counter()  # node -> times it came back restarted
        self.unresponsive: Counter = Counter()  # node -> times its heartbeat stopped for liveness_timeout_s
        self._beats: dict[str, Beat] = {}
        self._handled: set[str] = set()  # processes already found unresponsive
        self._deaf_lock = threading.Lock()  # _replaced_deaf_to: heartbeats and the liveness thread change it
        self._replaced_deaf_to: dict[str, frozenset[str]] = {}  # node -> topics a process of it was replaced for,
        # until a process of it hears them: a next process deaf to them points at the publisher, not the node
        self._publisher_silence_said: set[tuple[str, frozenset[str]]] = set()  # (process, topics) reported
        self._held: dict[str, DiagnosticStatus] = {}  # node -> its last task state
        self._held_when_lost: dict[str, str] = {}  # node -> the process whose task state was kept when it was lost
        self._held_pub = {
            n: self.create_publisher(DiagnosticStatus, f"/{n}/instruction_held", LATCHED_QOS) for n in self.nodes
        }
        for n in self.nodes:
            self.create_subscription(
                DiagnosticStatus, f"/{n}/heartbeat", lambda m, n=n: self._on_heartbeat(n, m), HEARTBEAT_QOS
            )
            self.create_subscription(
                DiagnosticStatus, f"/{n}/instruction_state", lambda m, n=n: self._on_task_state(n, m), LATCHED_QOS
            )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self._closing = threading.Event()
        if self.p["liveness_timeout_s"] > 0:
            threading.Thread(target=self._liveness_loop, name="liveness", daemon=True).start()
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
            self._lost_since.setdefault(node, time.monotonic())
            if node not in self.lost:
                self.lost.add(node)
                if node in self._held:
                    self._held_when_lost[node] = self._held[node].hardware_id
                self.get_logger().error(
                    f"{node}: lost (no answer to get_state); it is brought up again if it comes back"
                )
            return
        self._lost_since.pop(node, None)  # it answers (a restart's configure may then hold it for long)
        if node in self.lost and state == State.PRIMARY_STATE_UNCONFIGURED:
            self.restarts[node] += 1
            self.get_logger().warning(f"{node}: back (restarted, unconfigured): configuring and activating it")
            self._await_handover(node)
            if self._run([(node, "configure"), (node, "activate")], f"restart of {node}"):
                self.lost.discard(node)
        elif node in self.lost:
            self.lost.discard(node)

    # --- tasks across restarts -------------------------------------------------------------
    def _on_task_state(self, node: str, msg: DiagnosticStatus) -> None:
        """Keep the node's newest task state and hand it on to its next process (transient local)."""
        if task_state_from_msg(msg) is None:
            self.get_logger().error(f"{node}: ignoring a task state without its keys: {msg}")
            return
        self._held[node] = msg
        self._held_pub[node].publish(msg)

    def _await_handover(self, node: str) -> None:
        """Before configuring a restarted node that held a task: wait (at most TASK_HANDOVER_S) until its new
        process has published its own task state, i.e. it has taken (or declined) the one kept here."""
        old = self._held_when_lost.pop(node, None)
        if old is None:
            return
        deadline = time.monotonic() + TASK_HANDOVER_S
        while self._held[node].hardware_id == old and time.monotonic() < deadline and self.context.ok():
            time.sleep(0.02)
        if self._held[node].hardware_id == old:
            self.get_logger().warning(
                f"{node}: its new process took no task state within {TASK_HANDOVER_S:g} s (the kept one: "
                f"'{self._held[node].message}'); bringing it up anyway"
            )

    # --- liveness --------------------------------------------------------------------------
    def _on_heartbeat(self, node: str, msg: DiagnosticStatus) -> None:
        now, last, hearing = time.monotonic(), self._beats.get(node), Hearing.from_msg(msg)
        same = last is not None and last.process == msg.hardware_id
        deaf_since = None
        if hearing.deaf:
            deaf_since = last.deaf_since if same and last.deaf_since is not None else now
        self._beats[node] = Beat(now, msg.hardware_id, msg.message, last.first_at if same else now, hearing, deaf_since)
        if node in self._replaced_deaf_to and hearing.heard:
            with self._deaf_lock:  # heard again: a later process deaf to them is replaced again
                self._replaced_deaf_to[node] -= hearing.heard

    def _deaf_to(self, node: str, beat: Beat, now: float) -> frozenset[str]:
        """The topics the process that beats for `node` has said for liveness_timeout_s that it is deaf to, less
        those a process of the node was already replaced for."""
        if beat.deaf_since is None or now - beat.deaf_since < self.p["liveness_timeout_s"]:
            return frozenset()
        return beat.hearing.deaf - self._replaced_deaf_to.get(node, frozenset())

    def _silent_publishers(self, node: str, beat: Beat) -> frozenset[str]:
        """The topics the node's process is deaf to that a process of it was already replaced for: their
        publishers send nothing."""
        return beat.hearing.deaf & self._replaced_deaf_to.get(node, frozenset())

    def _deaf_s(self, node: str, beat: Beat, now: float) -> float:
        """How long the process that beats for `node` has beaten in a primary state while the node answered no
        get_state (seconds; 0 when it answers, or is in a transition)."""
        since = self._lost_since.get(node)
        if since is None or beat.state not in PRIMARY_LABELS:
            return 0.0
        return now - max(since, beat.first_at)

    def _unresponsive_why(self, node: str, beat: Beat, now: float) -> str:
        """Why `node` is unresponsive, in words ('' when it is not): its heartbeat silent for liveness_timeout_s,
        deaf for liveness_timeout_s + DEAF_GRACE_S, or deaf to a topic (`_deaf_to`)."""
        timeout = self.p["liveness_timeout_s"]
        if timeout <= 0:
            return ""
        silent_s = now - beat.at
        if timeout <= silent_s:
            return f"no heartbeat for {silent_s:.1f} s"
        deaf_s = self._deaf_s(node, beat, now)
        if deaf_s >= timeout + DEAF_GRACE_S:
            return f"its heartbeat comes but it answered no get_state for {deaf_s:.1f} s (it receives nothing)"
        if topics := self._deaf_to(node, beat, now):
            return (
                f"deaf to {', '.join(sorted(topics))}: matched with a publisher, it has received nothing from it "
                f"(said in its heartbeat for {now - beat.deaf_since:.1f} s)"
            )
        return ""

    def _liveness_loop(self) -> None:
        while not self._closing.wait(HEARTBEAT_PERIOD_S) and self.context.ok():
            for node in self.nodes:
                self._check_liveness(node)

    def _check_liveness(self, node: str) -> None:
        """A node whose heartbeat stopped for liveness_timeout_s, or deaf (`_unresponsive_why`): its stacks to its
        log (SIGUSR1), then, with kill_unresponsive, SIGKILL (respawn starts a new process); once per process."""
        beat, timeout, now = self._beats.get(node), self.p["liveness_timeout_s"], time.monotonic()
        if beat is None or beat.process in self._handled:
            return
        self._report_silent_publishers(node, beat)
        why = self._unresponsive_why(node, beat, now)
        if not why:
            return
        deaf_to = self._deaf_to(node, beat, now)
        self._handled.add(beat.process)
        self.unresponsive[node] += 1
        log = self.get_logger()
        what = (
            f"{node}: unresponsive: {why} (liveness_timeout_s {timeout:g}; last state '{beat.state}', process "
            f"{beat.process})"
        )
        pid = local_pid(beat.process)
        if pid is None:
            log.error(f"{what}; not a process on this host (or gone): no stack dump, nothing stopped")
            return
        os.kill(pid, STACKS_SIGNAL)
        log.error(f"{what}; its threads' stacks are in its log (SIGUSR1 to pid {pid})")
        if not self.p["kill_unresponsive"]:
            log.error(
                f"{node}: left running (kill_unresponsive is false; respawn:=true sets it): the executor holds the arm "
                "once the plan runs out"
            )
            return
        time.sleep(STACKS_WAIT_S)
        if local_pid(beat.process) == pid:
            os.kill(pid, signal.SIGKILL)
            with self._deaf_lock:
                self._replaced_deaf_to[node] = self._replaced_deaf_to.get(node, frozenset()) | deaf_to
            log.error(
                f"{node}: stopped (SIGKILL to pid {pid}): respawn starts a new process, brought up when it answers"
            )

    def _report_silent_publishers(self, node: str, beat: Beat) -> None:
        """Once per process and topics: the process is deaf to topics its predecessor was replaced for."""
        topics = self._silent_publishers(node, beat)
        if not topics or (beat.process, topics) in self._publisher_silence_said:
            return
        self._publisher_silence_said.add((beat.process, topics))
        self.get_logger().error(
            f"{node}: deaf to {', '.join(sorted(topics))} again, as the process replaced for it was: its publisher "
            "sends nothing (a hung or stalled driver), not this process; not replaced again until a process of it "
            "hears the topic (the executor holds the arm meanwhile)"
        )

    def _publish_diagnostics(self) -> None:
        now, values, errors = time.monotonic(), {}, []  # errors: nodes unresponsive, or whose publishers are silent
        for n in self.nodes:
            beat = self._beats.get(n)
            age = now - beat.at if beat else None
            if beat is not None and self._unresponsive_why(n, beat, now):
                errors.append(f"{n} unresponsive")
            values[f"{n}.lost"] = n in self.lost
            values[f"{n}.restarts"] = self.restarts[n]
            values[f"{n}.heartbeat_age_s"] = f"{age:.2f}" if age is not None else "none"
            values[f"{n}.state"] = beat.state if beat else "unknown"
            values[f"{n}.unresponsive"] = self.unresponsive[n]
            values[f"{n}.deaf_topics"] = ",".join(sorted(beat.hearing.deaf)) if beat else ""
            if beat is not None and (silent := self._silent_publishers(n, beat)):
                errors.append(f"{n} (its publishers of {', '.join(sorted(silent))} send nothing)")
            if n in self._held:
                values[f"{n}.held_instruction"] = self._held[n].message
        problems = [f"{n} lost" for n in sorted(self.lost)] + errors
        level = DiagnosticStatus.ERROR if errors else DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: lifecycle",
            message=", ".join(problems) if problems else "all nodes answer",
            hardware_id="vla_ros",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[status])  # (not nodes/conversions: its imports would double this process)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)

    # --- transitions ---------------------------------------------------------------------
    def state(self, node: str, timeout_s: float | None = None) -> int:
        """The node's lifecycle state id (asked again while answers are lost: service_calls)."""
        return get_state(self._get[node], timeout_s or self.p["transition_timeout_s"], self.context.ok)

    def transition(self, node: str, step: str) -> None:
        """Run `step` on `node` unless it is already at or past it (in the step's direction: an active node
        needs no configure, an unconfigured one no deactivate); RuntimeError if the node refuses."""
        current = self.state(node)
        if reached(current, step):
            if current != TRANSITIONS[step][2]:
                self.get_logger().info(
                    f"{node}: already {STATE_NAMES.get(current, current)}: no {step} (adopted as it is)"
                )
            return
        ok = change_state(
            self._change[node],
            self._get[node],
            step,
            self.p["transition_timeout_s"],
            self.context.ok,
            self.get_logger().warning,
        )
        if not ok and reached(self.state(node), step):  # refused as done already: another client ran it meanwhile
            self.get_logger().info(f"{node}: {step} refused, but the node is there already (another client ran it)")
            return
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

    def shutdown_gracefully(self) -> None:
        """Before the node is destroyed (runner.run_node): no more liveness checks or diagnostics."""
        self._closing.set()
        self.destroy_timer(self._diag_timer)

    # --- services ------------------------------------------------------------------------
    def _srv_startup(self, _req, res):
        res.success = self.startup()
        res.message = self.result or ""
        return res

    def _srv_shutdown(self, _req, res):
        res.success = self.shutdown()
        res.message = self.result or ""
        return res


def reached(current: int, step: str) -> bool:
    """Whether a node in lifecycle state `current` is at or past the target of `step` (a TRANSITIONS key), in
    the direction the step goes; False for a transition state or any other."""
    _, source, target = TRANSITIONS[step]
    if current not in STATE_ORDER:
        return False
    if STATE_ORDER[target] > STATE_ORDER[source]:
        return STATE_ORDER[current] >= STATE_ORDER[target]
    return STATE_ORDER[current] <= STATE_ORDER[target]


def main(args=None) -> int:
    return run_node(LifecycleManager, "vla_lifecycle_manager", (ValueError,), args, multithreaded=True)


if __name__ == "__main__":
    sys.exit(main())
