"""The recorder node's parameter schema (vla_ros/params.py's `Param`/`Schema`, kept beside the recorder)."""

from __future__ import annotations

from vla_ros.params import Param, Schema
from vla_ros.recording.video import VIDEO_CODECS

RECORDER = Schema(
    Param("robot_config", "sim", "robot config (name or path) whose cameras, joints and topics are recorded"),
    Param("output_dir", "", "folder of the recording: bags/ and lerobot/ ('' = runs/recording-<UTC time>)"),
    Param(
        "outcome_topic",
        "/vla_sim_robot/outcome",
        "std_msgs/String: running/none start an episode, success/failure end it ('' = the operator services only)",
    ),
    Param("task_topic", "/vla_sim_robot/task", "std_msgs/String: the task, when no instruction was set ('' = none)"),
    Param(
        "executor_output",
        "",
        "the executor's output: the type of `commands` recorded ('' = the robot config's; the demo sets its --output)",
    ),
    Param("fps", 10.0, "frame rate of the LeRobotDataset (Hz; whole numbers)", above=0.0, max=1000.0),
    Param("lerobot", True, "convert each finished episode's bag into the LeRobotDataset (lerobot/)"),
    Param(
        "video_codec",
        "lossless",
        "the dataset's MP4s: lossless (RGB H.264) or h264 (yuv420p)",
        choices=tuple(VIDEO_CODECS),
    ),
    Param("compression", "lz4", "MCAP chunk compression", choices=("lz4", "zstd", "none")),
    Param("max_queued_frames", 64, "camera frames waiting for the writer before new ones are dropped", min=1),
    Param(
        "max_queued_messages", 4000, "messages of any kind waiting for the writer before new ones are dropped", min=1
    ),
    Param(
        "convert_while_recording",
        False,
        "convert finished episodes while the next one records; false: only between episodes and at shutdown",
    ),
    Param(
        "writer_nice",
        15,
        "nice value of the writer and converter threads (10-19; the process, callbacks included, runs at 10)",
        min=10,
        max=19,
    ),
    Param(
        "keep_episodes_without_chunks",
        False,
        "keep an episode in which the policy published no chunk (true for teleoperation); false: its bag is deleted",
    ),
    Param(
        "default_task", "", "task text of frames recorded before any instruction or sim task ('' = refuse such frames)"
    ),
)
