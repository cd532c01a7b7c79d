"""The control thread's real-time set-up (vla_ros/realtime.py): what takes effect, and a clear line
when the system does not permit it."""

import gc
import os
import threading
import weakref

from vla_ros.realtime import CollectorBetweenTicks, set_cpu_affinity, set_fifo_priority, setup_control_thread


def in_thread(fn):
    """fn() run in a fresh thread (the set-up applies to the calling thread); its result."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()))
    thread.start()
    thread.join(timeout=10)
    return out["value"]


def test_fifo_priority_takes_effect_or_says_why_not():
    def attempt():
        line = set_fifo_priority(10)
        return line, os.sched_getscheduler(0)

    line, policy = in_thread(attempt)
    if "not permitted" in line:
        assert policy == os.SCHED_OTHER
        assert "RLIMIT_RTPRIO" in line and "normal priority" in line
    else:
        assert policy == os.SCHED_FIFO and "SCHED_FIFO at priority 10" in line
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread only


def test_cpu_affinity_pins_the_calling_thread_only():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    line, pinned = in_thread(lambda: (set_cpu_affinity([cpu]), os.sched_getaffinity(0)))
    assert pinned == {cpu} and "pinned" in line
    assert os.sched_getaffinity(0) == before


def test_unavailable_cpu_is_refused_with_the_available_ones():
    missing = max(os.sched_getaffinity(0)) + 1000
    line = in_thread(lambda: set_cpu_affinity([missing]))
    assert f"CPUs [{missing}] are not available" in line and "not pinned" in line


def test_nothing_requested_does_nothing():
    assert setup_control_thread(0, [], False).lines == []


def test_memory_lock_reports_its_outcome():
    line = in_thread(lambda: setup_control_thread(0, [], True).lines)
    assert len(line) == 1 and line[0].startswith("lock_memory: ")
    assert "locked" in line[0] or "RLIMIT_MEMLOCK" in line[0]


class Cycle:
    def __init__(self):
        self.me = self


def test_collector_keeps_collection_between_ticks_and_frees_cycles_when_there_is_slack():
    collector = CollectorBetweenTicks(min_slack_s=0.001, full_period_s=1e9, young_every=3)
    collector.start()
    try:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        garbage = Cycle()
        ref = weakref.ref(garbage)
        del garbage
        for _ in range(10):  # no slack: never collects
            collector.maybe_collect(0.0)
        assert ref() is not None and collector.collections == 0
        for _ in range(3):
            collector.maybe_collect(0.002)
        assert collector.collections == 1 and ref() is None
    finally:
        collector.stop()
        gc.unfreeze()
    assert gc.isenabled()


def old_garbage():
    """A reference cycle promoted to the oldest generation, then dropped; a weak reference to it."""
    garbage = Cycle()
    gc.collect(1)  # survives while referenced: now in generation 2
    ref = weakref.ref(garbage)
    del garbage
    return ref


def test_collector_reaches_the_oldest_generation_only_at_its_full_period():
    for full_period_s, freed in ((1e9, False), (0.0, True)):
        collector = CollectorBetweenTicks(min_slack_s=0.0, full_period_s=full_period_s, young_every=1)
        collector.start()
        try:
            ref = old_garbage()
            collector.maybe_collect(1.0)
            assert (ref() is None) == freed
        finally:
            collector.stop()
            gc.unfreeze()
            gc.collect()
