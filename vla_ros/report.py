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


def plot_planned_vs_commanded(record, joint_names: list[str], path: Path) -> Path:
    """One panel per joint: every planned chunk (thin), the commands (thick) and the measured positions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for t, _ in record.commanded] + [t for t, _ in record.measured]
    t0 = min(times) if times else 0.0
    n = len(joint_names)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.6 * n), sharex=True)
    for j, ax in enumerate(np.atleast_1d(axes)):
        for k, (t, p) in enumerate(record.planned):
            ax.plot(t - t0, p[:, j], color="tab:orange", lw=0.8, alpha=0.7, label="planned chunks" if k == 0 else None)
        if record.commanded:
            tc = np.array([t for t, _ in record.commanded]) - t0
            ax.plot(tc, [c[j] for _, c in record.commanded], color="tab:blue", lw=1.6, label="commanded")
        if record.measured:
            tm = np.array([t for t, _ in record.measured]) - t0
            ax.plot(tm, [m[j] for _, m in record.measured], color="tab:green", lw=1.0, ls="--", label="measured")
        ax.set_ylabel(joint_names[j], fontsize=8)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
