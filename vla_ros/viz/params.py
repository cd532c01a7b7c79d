"""The rerun node's parameter schema (vla_ros/params.py's `Param`/`Schema`, kept beside the visualisation)."""

from __future__ import annotations

from vla_ros.params import Param, Schema

RERUN = Schema(
    Param("robot_config", "sim", "robot config (name or path) whose cameras, joints and topics are shown"),
    Param("target", "", "a .rrd path, a rerun gRPC address (rerun+http://host:9876/proxy), or '' (spawn a viewer)"),
    Param("outcome_topic", "/vla_sim_robot/outcome", "std_msgs/String episode outcome ('' = none)"),
    Param("task_topic", "/vla_sim_robot/task", "std_msgs/String task ('' = none)"),
    Param("executor_output", "", "the executor's output: the type of `commands` ('' = the robot config's)"),
)
