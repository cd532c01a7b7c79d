"""`vla-ros export BAG [BAG ...] --lerobot OUT --robot ROBOT`: bags recorded by anyone to a LeRobotDataset.

A BAG is an .mcap file, a rosbag2 folder (metadata.yaml + .mcap files) or a folder of bag folders
(the recorder's `bags/`). Topics come from the robot config (recording/episode.py: its cameras,
`joint_states`, `commands` in the executor's output kind, `action_chunk`, `instruction`, remapped
by its `topics:`); episodes from the recorder's markers, else the outcome topic, else one per bag.
Episodes are appended to OUT (created if missing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vla_ros.recording.episode import RecordingTopics, load_episodes
from vla_ros.recording.lerobot import LeRobotWriter
from vla_ros.recording.video import VIDEO_CODECS


def expand_bags(paths: list[Path]) -> list[Path]:
    """Bags in `paths`: files and bag folders as they are, a folder of bag folders as its sorted bags."""
    out = []
    for path in paths:
        if path.is_file() or (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")):
            out.append(path)
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if p.is_dir() and (p / "metadata.yaml").is_file())
            if not inner:
                raise SystemExit(f"export: {path} holds no bag (an .mcap file, a rosbag2 folder, or folders of them)")
            out += inner
        else:
            raise SystemExit(f"export: no such bag: {path}")
    return out


def export(
    bags: list[Path],
    out: Path,
    robot: str,
    fps: float = 10.0,
    codec: str = "lossless",
    outcome_topic: str | None = None,
    task_topic: str | None = None,
    default_task: str = "",
    log=print,
) -> dict:
    topics = RecordingTopics.from_robot_config(robot, outcome=outcome_topic, task=task_topic)
    writer = LeRobotWriter(out, fps, topics.robot, codec)
    outcomes: dict[str, int] = {}
    skipped = 0
    for bag in expand_bags(bags):
        episodes = load_episodes(bag, topics, fps, writer.horizon(), default_task)
        if not episodes:
            skipped += 1
            log(
                f"{bag}: no episode with camera frames, joint states and commands (topics {topics.cameras}, "
                f"{topics.joint_states}, {topics.commands})"
            )
        for ep in episodes:
            row = writer.add_episode(ep)
            outcomes[ep.outcome] = outcomes.get(ep.outcome, 0) + 1
            log(f"{bag.name}: episode {row['episode_index']}, {row['length']} frames, {ep.outcome}, {row['tasks']}")
    return {
        "dataset": str(out),
        "episodes": writer.info["total_episodes"] if writer.info else 0,
        "frames": writer.info["total_frames"] if writer.info else 0,
        "outcomes": outcomes,
        "bags_without_episodes": skipped,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bags", nargs="+", type=Path, help=".mcap files, rosbag2 folders, or folders of bag folders")
    p.add_argument("--lerobot", type=Path, required=True, help="the LeRobotDataset folder (created or appended to)")
    p.add_argument("--robot", default="sim", help="robot config (name or path) giving the topics, joints and cameras")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of the dataset (whole Hz)")
    p.add_argument(
        "--video-codec",
        choices=sorted(VIDEO_CODECS),
        default="lossless",
        help="MP4 encoding of the camera frames (lossless: frames read back equal)",
    )
    p.add_argument(
        "--outcome-topic", default=None, help="std_msgs/String outcome topic (default /vla_sim_robot/outcome)"
    )
    p.add_argument("--task-topic", default=None, help="std_msgs/String task topic (default /vla_sim_robot/task)")
    p.add_argument("--task", default="", help="task text for frames recorded before any instruction")
