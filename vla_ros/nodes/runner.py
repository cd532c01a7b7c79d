"""The `main()` every node shares: init with `--ros-args`, build, spin, shut down cleanly."""

from __future__ import annotations

import sys

import rclpy


def run_node(factory, name: str, startup_errors: tuple[type[BaseException], ...] = (ValueError,), args=None) -> int:
    """Spin the node `factory()` builds; a startup error in `startup_errors` is logged as fatal, exit 1."""
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = factory()
    except startup_errors as exc:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
