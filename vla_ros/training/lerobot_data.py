"""A LeRobotDataset (v3.0, e.g. the recorder's `lerobot/`) as the demo model's training set.

The same arrays the scripted-expert recorder makes (vla_ros/sim/recorder.py), so `train()` takes
either: per frame k the cameras resized to the model's input size (the recorder's `resize_rgb`),
the joint state, and as the label the next `horizon` commanded joint positions of its episode,
`action[k+1 .. k+horizon]` (the chunk point i is due (i+1) / fps after the observation; the last
command is held past the episode's end). Episodes are kept by outcome (default: successes only).
The dataset's frame period is the model's dt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.core.images import resize_rgb
from vla_ros.recording.lerobot import read_dataset
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES


def load_lerobot(
    root: Path, image_size: int = 64, horizon: int = 8, outcomes: tuple[str, ...] = ("success",)
) -> tuple[dict[str, np.ndarray], float, dict]:
    """(training arrays, dt_s, summary) of the episodes of `root` whose outcome is in `outcomes`."""
    data = read_dataset(root)
    feats = data.info["features"]
    missing = [c for c in CAMERAS if f"observation.images.{c}" not in feats]
    if missing or feats["observation.state"]["names"] != list(JOINT_NAMES):
        raise ValueError(
            f"{root}: the demo model needs cameras {list(CAMERAS)} and joints {list(JOINT_NAMES)}; the dataset has "
            f"cameras {data.cameras} and joints {feats['observation.state']['names']}"
        )
    if feats["action"]["names"] != list(JOINT_NAMES):
        raise ValueError(f"{root}: actions {feats['action']['names']} are not the joint positions {list(JOINT_NAMES)}")
    out = {f"image_{c}": [] for c in CAMERAS} | {"state": [], "actions": [], "task": [], "episode": []}
    kept = []
    for e, row in enumerate(data.episodes):
        if row.get("outcome", "unknown") not in outcomes:
            continue
        kept.append(e)
        sl = data.episode_slice(e)
        action = data.columns["action"][sl].astype(np.float64)
        n = len(action)
        idx = np.minimum(np.arange(n)[:, None] + np.arange(1, horizon + 1)[None, :], n - 1)
        out["actions"].append(action[idx])
        out["state"].append(data.columns["observation.state"][sl].astype(np.float64))
        out["task"].append(data.columns["task_index"][sl])
        out["episode"].append(np.full(n, e))
        for c in CAMERAS:
            frames = data.frames(c, e)
            out[f"image_{c}"].append(np.stack([resize_rgb(f, image_size, image_size) for f in frames]))
    if not kept:
        outcome_counts = {
            o: sum(r.get("outcome") == o for r in data.episodes) for o in {r.get("outcome") for r in data.episodes}
        }
        raise ValueError(f"{root}: no episode with outcome in {list(outcomes)} (the dataset has {outcome_counts})")
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    arrays["instructions"] = np.array(data.tasks)
    summary = {
        "dataset": str(root),
        "episodes": len(kept),
        "episodes_in_dataset": len(data.episodes),
        "outcomes": list(outcomes),
        "samples": int(len(arrays["state"])),
    }
    return arrays, 1.0 / data.info["fps"], summary
