"""Real-time set-up of a control thread, ROS-free: scheduling priority, CPU affinity, locked
memory, and garbage collection kept out of the loop.

What ros2_control's controller manager does for its update thread, for the chunk executor's
control loop. Every step is optional and falls back to the normal behaviour when the system does
not permit it; `RealtimeReport.lines` says what took effect and why something did not, once.

Granting the privileges on a robot computer (as for ros2_control): put the user in a group with
real-time limits, e.g. in `/etc/security/limits.d/realtime.conf`

    @realtime  -  rtprio   98
    @realtime  -  memlock  unlimited

(then log in again), or give the interpreter `CAP_SYS_NICE` and `CAP_IPC_LOCK`. A
PREEMPT_RT kernel makes the priority worth most.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
from dataclasses import dataclass, field

MCL_CURRENT, MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux


@dataclass
class RealtimeReport:
    """What the set-up did: one line per requested step."""

    lines: list[str] = field(default_factory=list)


def set_fifo_priority(priority: int, thread_id: int = 0) -> str:
    """SCHED_FIFO at `priority` (1-98) for the calling thread (or the thread of native id
    `thread_id`); the outcome in words."""
    try:
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as exc:
        limit = _rtprio_limit()
        return (
            f"realtime_priority {priority}: not permitted ({exc.strerror or exc}; RLIMIT_RTPRIO is {limit}): "
            "the control loop runs at normal priority (docs/executor-and-safety.md: granting real-time privileges)"
        )
    return f"realtime_priority {priority}: control loop runs SCHED_FIFO at priority {priority}"


def set_cpu_affinity(cpus: list[int]) -> str:
    """Pin the calling thread to `cpus` (CPU indices); the outcome in words."""
    available = sorted(os.sched_getaffinity(0))
    unknown = sorted(set(cpus) - set(available))
    if unknown:
        return f"cpu_affinity {cpus}: CPUs {unknown} are not available (have {available}); not pinned"
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        return f"cpu_affinity {cpus}: not permitted ({exc.strerror or exc}); not pinned"
    return f"cpu_affinity {cpus}: control loop pinned"


def lock_memory() -> str:
    """mlockall(MCL_CURRENT | MCL_FUTURE): no page fault on the control path; the outcome in words."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        errno = ctypes.get_errno()
        return (
            f"lock_memory: not permitted ({os.strerror(errno)}; RLIMIT_MEMLOCK is {_memlock_limit()}): "
            "memory stays pageable"
        )
    return "lock_memory: process memory locked (mlockall)"


def _rtprio_limit() -> str:
    import resource

    return str(resource.getrlimit(resource.RLIMIT_RTPRIO)[0])


def _memlock_limit() -> str:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    return "unlimited" if soft == resource.RLIM_INFINITY else f"{soft} bytes"


def setup_control_thread(priority: int, cpus: list[int], lock: bool, callback_thread_id: int = 0) -> RealtimeReport:
    """Apply the requested steps to the calling thread (0 / [] / False: not requested).

    With a priority, `callback_thread_id` (the native id of the thread that runs the node's ROS
    callbacks) gets SCHED_FIFO one level below: the control loop waits for the interpreter lock
    whenever that thread holds it, and a normal-priority holder preempted by other processes would
    hold up the real-time loop (priority inversion)."""
    report = RealtimeReport()
    if priority > 0:
        report.lines.append(set_fifo_priority(priority))
        if callback_thread_id and priority > 1:
            line = set_fifo_priority(priority - 1, callback_thread_id)
            report.lines.append(line.replace("control loop runs", "ROS callback thread runs"))
    if cpus:
        report.lines.append(set_cpu_affinity(cpus))
    if lock:
        report.lines.append(lock_memory())
    return report


class CollectorBetweenTicks:
    """Garbage collection out of the control loop's ticks.

    `start()` freezes what start-up allocated (`gc.freeze()`: never scanned again) and turns the
    automatic collector off for the process; `maybe_collect(slack_s)`, called after a tick with the
    time left to the next deadline, collects the youngest generation when there is slack, and the
    older ones at most every `full_period_s`, so no tick waits for a collection it did not schedule.
    `stop()` restores automatic collection.
    """

    def __init__(self, min_slack_s: float, full_period_s: float = 10.0, young_every: int = 50):
        self.min_slack_s, self.full_period_s, self.young_every = min_slack_s, full_period_s, young_every
        self._ticks = 0
        self._last_full_s = time.monotonic()
        self.collections = 0

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        gc.disable()

    def stop(self) -> None:
        gc.enable()

    def maybe_collect(self, slack_s: float) -> None:
        """Collect if `slack_s` (seconds to the next deadline) allows; the young generation every
        `young_every` ticks, everything every `full_period_s`."""
        self._ticks += 1
        if slack_s < self.min_slack_s or self._ticks < self.young_every:
            return
        self._ticks = 0
        now = time.monotonic()
        if now - self._last_full_s >= self.full_period_s:
            gc.collect(2)  # the frozen start-up objects are not scanned
            self._last_full_s = now
        else:
            gc.collect(0)
        self.collections += 1
