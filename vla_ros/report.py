"""Artifacts of a run: an episode video and a plot of planned vs. commanded joint positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(frames: list[np.ndarray], stem: Path, fps: float = 10.0, upscale: int = 3) -> Path:
    """frames (H, W, 3) uint8 -> `stem.mp4` (ffmpeg from imageio-ffmpeg), or `stem.gif` without it.

    Frames are enlarged `upscale` times (nearest neighbour) so a small camera image is watchable.
    """
    import imageio.v2 as imageio

    frames = [f.repeat(upscale, 0).repeat(upscale, 1) for f in frames]

    try:
        path = stem.with_suffix(".mp4")
        with imageio.get_writer(path, fps=fps, macro_block_size=1) as writer:
            for f in frames:
                writer.append_data(f)
        return path
    except Exception:  # noqa: BLE001 - no ffmpeg backend: fall back to GIF
        path = stem.with_suffix(".gif")
        imageio.mimsave(path, frames, duration=1.0 / fps)
        return path


def load_run(path: str | Path) -> dict[str, np.ndarray]:
    """A run recorded by the executor (`record_path`, core/run_log.py)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _segments(t: np.ndarray, max_gap_s: float) -> list[slice]:
    """Index ranges of `t` without gaps longer than `max_gap_s` (commands stop while disabled)."""
    breaks = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    edges = [0, *breaks.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b - a > 3]


def smoothness(run: dict[str, np.ndarray], max_gap_s: float = 0.05) -> dict[str, float]:
    """Jerk of the commanded trajectory (rad/s^3: change of its acceleration per tick; max and RMS
    over all joints and ticks), the max per command mode (`tracking/nominal`, `tracking/filter`,
    `holding`, ...: which part of the executor made the command that changed the acceleration; runs
    recorded before modes were logged have none) and the target jumps at chunk switches (rad, p50 and max).

    The jerk comes from the commanded accelerations, not from third differences of positions,
    which the control loop's timing jitter would swamp."""
    jerks, modes = [], []
    mode = run.get("command_mode")
    for seg in _segments(run["command_t"], max_gap_s):
        jerks.append(np.diff(run["command_acc"][seg], axis=0) / np.diff(run["command_t"][seg])[:, None])
        if mode is not None and mode.size:
            modes.append(mode[seg][1:])
    jerk = np.concatenate(jerks) if jerks else np.zeros((0, 1))
    jumps = run.get("switch_jump", np.zeros(0))
    out = {
        "max_jerk": float(np.abs(jerk).max()) if jerk.size else float("nan"),
        "rms_jerk": float(np.sqrt(np.mean(jerk**2))) if jerk.size else float("nan"),
        "switch_jump_p50": float(np.percentile(jumps, 50)) if jumps.size else float("nan"),
        "switch_jump_max": float(jumps.max()) if jumps.size else float("nan"),
    }
    if modes:
        per_tick = np.abs(jerk).max(axis=1)
        made_in = np.concatenate(modes)
        out["max_jerk_by_mode"] = {str(m): round(float(per_tick[made_in == m].max()), 1) for m in np.unique(made_in)}
    return out


def _with_gaps(t: np.ndarray, y: np.ndarray, max_gap_s: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) with NaN inserted where samples stop (commands disabled), so no line bridges the gap."""
    gaps = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    return np.insert(t, gaps, np.nan), np.insert(y.astype(float), gaps, np.nan)


def plot_run(run: dict[str, np.ndarray], path: Path, window_s: tuple[float, float] | None = None) -> Path:
    """One panel per joint: planned chunks (thin), commands (thick), measured (dashed), position limits (red).

    window_s: (start, end) seconds after the first command; default the whole run.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(n) for n in run["joint_names"]]
    t0 = float(run["command_t"][0]) if run["command_t"].size else 0.0
    lo, hi = window_s if window_s else (-np.inf, np.inf)

    def visible(t):
        return (t - t0 >= lo) & (t - t0 <= hi)

    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.7 * len(names)), sharex=True, squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        for k, cid in enumerate(np.unique(run["chunk_id"])):
            sel = (run["chunk_id"] == cid) & visible(run["chunk_t"])
            if sel.any():
                ax.plot(
                    run["chunk_t"][sel] - t0,
                    run["chunk_q"][sel, j],
                    color="tab:orange",
                    lw=0.7,
                    alpha=0.6,
                    label="planned chunks" if k == 0 else None,
                )
        commanded = visible(run["command_t"])
        ax.plot(
            *_with_gaps(run["command_t"][commanded] - t0, run["command_q"][commanded, j]),
            color="tab:blue",
            lw=1.5,
            label="commanded",
        )
        measured = visible(run["measured_t"])
        ax.plot(
            *_with_gaps(run["measured_t"][measured] - t0, run["measured_q"][measured, j]),
            color="tab:green",
            lw=1.0,
            ls="--",
            label="measured",
        )
        for limit in (run["min_position"][j], run["max_position"][j]):
            ax.axhline(
                limit,
                color="tab:red",
                lw=0.8,
                ls=":",
                label="position limits" if limit == run["min_position"][j] else None,
            )
        span = run["command_q"][commanded, j] if commanded.any() else np.zeros(1)
        pad = max(0.05, 0.2 * float(np.ptp(span)))
        ax.set_ylim(float(span.min()) - pad, float(span.max()) + pad)  # limit lines show when they are near
        ax.set_ylabel(names[j], fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time since the first command (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
