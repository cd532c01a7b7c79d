"""The `main()` every node shares: init with `--ros-args`, build, spin, stop cleanly on a signal.

SIGINT, SIGTERM (what systemd, docker and process supervisors send) and SIGHUP are handled
explicitly, also when the process inherited an ignored SIGINT (started in the background): the
node's `shutdown_gracefully()` runs while ROS is still up (the executor brakes to rest), then
the node is destroyed. SIGUSR1 writes every thread's Python stack to stderr (the node's log) and
the node carries on: `kill -USR1 <pid>` shows where a node that stopped answering is stuck.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import threading

import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STACKS_SIGNAL = signal.SIGUSR1  # dump every thread's Python stack to stderr


def run_node(
    factory,
    name: str,
    startup_errors: tuple[type[BaseException], ...] = (ValueError,),
    args=None,
    multithreaded: bool = False,
    switch_interval_s: float | None = None,
    events_executor: bool = False,
) -> int:
    """Spin the node `factory()` builds until a stop signal; a startup error in `startup_errors` is
    logged as fatal (exit 1). `multithreaded`: callbacks that wait on other services need it.
    `switch_interval_s`: Python's GIL switch interval for this process (default 5 ms): shorter lets
    a thread woken by a callback (the policy node's inference thread) run sooner. `events_executor`:
    rclpy's `EventsExecutor` (callbacks dispatched from C++ instead of a wait set rebuilt in Python per
    wake; falls back to the single-threaded executor where these rclpy wheels lack it). It is spun here,
    in the main thread; spun from another thread (rclpy 9.1.2) it delivered nothing and held a core."""
    if switch_interval_s is not None:
        sys.setswitchinterval(switch_interval_s)
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = factory()
    except startup_errors as exc:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = make_executor(multithreaded, events_executor)
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        if hasattr(node, "shutdown_gracefully"):
            node.shutdown_gracefully()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def make_executor(multithreaded: bool = False, events: bool = False):
    """MultiThreadedExecutor (4 threads), EventsExecutor (if `events` and rclpy has it) or SingleThreadedExecutor."""
    if multithreaded:
        return MultiThreadedExecutor(num_threads=4)
    if events:
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            return SingleThreadedExecutor()
        return EventsExecutor()
    return SingleThreadedExecutor()


def destroy_entities(node, entities: list) -> None:
    """Destroy the subscriptions, publishers and timers a node made at configure, and empty the list."""
    destroy = {
        "Subscription": node.destroy_subscription,
        "Publisher": node.destroy_publisher,
        "Timer": node.destroy_timer,
    }
    for entity in entities:
        destroy[type(entity).__name__](entity)
    entities.clear()
