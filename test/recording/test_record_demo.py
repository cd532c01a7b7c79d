"""A demo episode recorded through the real nodes (`vla-ros demo --record`): the MCAP read back with the
`mcap` reader, the LeRobotDataset with vla_ros's reader (its structure the one LeRobot read in the fixture)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.recording.bag import read_bag
from vla_ros.recording.episode import EPISODE_MARKER_TOPIC, RecordingTopics, decode_frame
from vla_ros.recording.lerobot import read_dataset

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dataset"


@pytest.fixture(scope="module")
def recorded(demo_run):
    """One demo episode with the recorder and the rerun node (about 15 s)."""
    return demo_run(180, episodes=1, first_seed=2000, record=True, viz=True)


def test_the_bag_holds_every_topic_with_monotonic_stamps(recorded):
    from mcap.reader import make_reader

    rec = recorded["recording"]
    assert rec["episodes_recorded"] == 1 and rec["episodes_converted"] == 1 and rec["dropped"] == 0, rec
    (bag,) = sorted(Path(rec["bags"]).iterdir())
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    (mcap_file,) = [bag / f for f in info["relative_file_paths"]]
    counts, per_topic = defaultdict(int), defaultdict(list)
    with open(mcap_file, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2"
        for schema, channel, message in reader.iter_messages(log_time_order=False):  # as written
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            counts[channel.topic] += 1
            per_topic[channel.topic].append(message.log_time)
    for topic, times in per_topic.items():
        assert np.all(np.diff(times) >= 0), f"{topic}: receive times not increasing"
    # across topics the file holds callback order: receive times of two subscriptions may cross by a few ms
    # under load (the executor's order); readers sort by log time (the MCAP has a message index)
    topics = RecordingTopics.from_robot_config("sim")
    expected = {t for t, *_ in topics.subscriptions()} | {"/parameter_events", EPISODE_MARKER_TOPIC}
    assert expected <= {ch.topic for ch in summary.channels.values()}  # every subscription has its channel
    expected -= {"/plan_prefix", "/instruction"}  # guided mode only; the demo sets the instruction as a parameter
    assert expected <= set(counts), sorted(expected - set(counts))
    assert dict(summary.statistics.channel_message_counts) == {
        cid: counts.get(ch.topic) for cid, ch in summary.channels.items() if counts.get(ch.topic)
    }
    assert {
        t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"] if t["message_count"]
    } == dict(counts)
    assert counts["/camera/image_raw"] >= 5 and counts["/joint_states"] >= 50 and counts["/commands"] >= 50
    assert counts["/action_chunk"] >= 1 and counts[EPISODE_MARKER_TOPIC] == 1
    stamps = defaultdict(list)
    for m in read_bag(bag, ["/camera/image_raw", "/wrist_camera/image_raw", "/joint_states"]):
        stamps[m.topic].append(m.message.header.stamp.sec * 10**9 + m.message.header.stamp.nanosec)
    for topic, s in stamps.items():
        assert np.all(np.diff(s) > 0), f"{topic}: header stamps not increasing"
    marker = json.loads(next(read_bag(bag, [EPISODE_MARKER_TOPIC])).message.data)
    assert marker["outcome"] == ("success" if recorded["success_rate"] == 1.0 else "failure")


def test_the_dataset_holds_the_bag_frames_and_has_the_fixture_structure(recorded):
    rec = recorded["recording"]
    (bag,) = sorted(Path(rec["bags"]).iterdir())
    data = read_dataset(rec["lerobot"])
    fixture = json.loads((FIXTURE / "meta" / "info.json").read_text())
    assert {k: (f["dtype"], f["shape"], f["names"]) for k, f in data.info["features"].items()} == {
        k: (f["dtype"], f["shape"], f["names"]) for k, f in fixture["features"].items()
    }
    assert data.info["total_episodes"] == 1 and data.episodes[0]["outcome"] in ("success", "failure")
    n = data.episodes[0]["length"]
    assert n >= 5 and data.tasks == [recorded["episodes_detail"][0]["instruction"]]
    topics = RecordingTopics.from_robot_config("sim")
    for cam in data.cameras:
        recorded_frames = [decode_frame(m.message, m.type_name) for m in read_bag(bag, [topics.cameras[cam]])]
        picked = [0]
        for k, frame in enumerate(data.frames(cam, 0)):  # lossless: each dataset frame is a recorded one, in order
            # (a still arm makes equal frames: the first equal one at or after the last match)
            same = [i for i in range(picked[-1], len(recorded_frames)) if np.array_equal(recorded_frames[i], frame)]
            assert same, f"{cam}: dataset frame {k} equals no recorded frame at or after frame {picked[-1]}"
            picked.append(same[0])
        assert len(picked) == n + 1
    states = np.array([m.message.position for m in read_bag(bag, ["/joint_states"])], np.float32)
    commands = np.array([m.message.data for m in read_bag(bag, ["/commands"])], np.float32)
    for row in data.columns["observation.state"]:
        assert np.any(np.all(states == row, axis=1))
    for row in data.columns["action"]:
        assert np.any(np.all(commands == row, axis=1))
    assert data.columns["action.chunk_length"].max() == 8
    np.testing.assert_allclose(data.columns["timestamp"], np.arange(n) / 10, atol=1e-6)


def test_export_of_the_bag_gives_the_recorders_dataset(recorded, check_export):
    check_export(recorded["recording"])


def test_the_live_rrd_loads_with_rerun_and_holds_the_run(recorded):
    """viz:=rerun wrote run.rrd: rerun's own reader finds every entity of the run (viz/rerun_log.py)."""
    from rerun.chunk import RrdReader

    rows = _rrd_rows(Path(recorded["rrd"]))
    joints = RecordingTopics.from_robot_config("sim").joint_names
    expected = ["cameras/front", "cameras/wrist", "executor/state", "executor/estop", "task", "outcome"]
    expected += [f"joints/{j}/{s}" for j in joints for s in ("measured", "commanded", "planned")]
    expected += [f"limit_margin/{j}" for j in joints]
    assert set(expected) <= set(rows), sorted(set(expected) - set(rows))
    assert rows["cameras/front"] >= 5 and rows["joints/elbow/measured"] >= 50
    assert any(k.startswith("latency/vla_policy/frame_to_chunk") for k in rows)
    assert RrdReader(recorded["rrd"]).recordings()[0].application_id == "vla_ros"


def test_view_converts_the_recorded_bags_to_an_rrd(recorded, tmp_path):
    from vla_ros.cli import main

    run_dir = Path(recorded["run_dir"])
    assert main(["view", str(run_dir), "--rrd", str(tmp_path / "bags.rrd"), "--no-viewer"]) == 0
    rows = _rrd_rows(tmp_path / "bags.rrd")
    assert rows["cameras/front"] == len(
        list(read_bag(sorted(Path(recorded["recording"]["bags"]).iterdir())[0], ["/camera/image_raw"]))
    )
    assert {"joints/elbow/planned", "joints/elbow/commanded", "executor/state"} <= set(rows)


def _rrd_rows(path: Path) -> dict[str, int]:
    """entity path -> rows, read back with rerun's RrdReader."""
    from rerun.chunk import RrdReader

    rows: dict[str, int] = defaultdict(int)
    for chunk in RrdReader(path).stream().to_chunks():
        rows[chunk.entity_path.lstrip("/")] += chunk.num_rows
    return dict(rows)
