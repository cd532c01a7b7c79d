"""The demo end to end: sim + policy (bundled model) + executor as processes, episodes succeed."""

import json
from pathlib import Path

from vla_ros.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_demo_episodes_succeed_through_the_ros_pipeline(ros_env, tmp_path):
    summary = run_demo(
        episodes=2,
        first_seed=2000,
        run_dir=tmp_path / "run",
        domain_id=int(ros_env["ROS_DOMAIN_ID"]),
        log=lambda *_: None,
    )
    assert summary["episodes"] == 2
    assert summary["success_rate"] >= 0.5, json.dumps(summary["episodes_detail"])
    assert summary["frame_to_chunk_ms"]["p50"] > 0
    assert Path(summary["video"]).stat().st_size > 10_000
    assert Path(summary["plot"]).stat().st_size > 10_000
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["episodes"] == 2
