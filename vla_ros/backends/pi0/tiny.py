"""A complete tiny π₀ / π₀.5 checkpoint folder with random weights, for tests and demos of the plumbing.

Same files and key layout as a real openpi-origin one (config.json, model.safetensors,
norm_stats.json, tokenizer.model) plus the robot mapping (pi0.yaml), at toy sizes: 2 layers,
width 64/32, SigLIP on 28x28 images with 14-pixel patches, a SentencePiece model trained on a
few sim prompts (π₀.5: also in its "Task: ..., State: ...;\nAction: " format). π₀.5's
statistics carry quantiles (q01/q99), which it normalises with.

    python -m vla_ros.backends.pi0.tiny --out /tmp/pi0_tiny [--variant pi05]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import sentencepiece
import torch

from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.checkpoint import (
    NORM_STATS,
    WEIGHTS,
    save_norm_stats,
    save_weights,
)
from vla_ros.backends.pi0.configuration import (
    IMAGE_SLOTS,
    GemmaSpec,
    Pi0Config,
    VisionSpec,
)
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tokenizer import train_sentencepiece
from vla_ros.backends.tiny import SIM_INSTRUCTIONS, is_gripper, relative_joints, write_settings

VARIANTS = ("pi0", "pi05")
PI05_EXAMPLES = tuple(
    f"Task: {p}, State: {' '.join(str(7 * i + 40 * k) for i in range(7))};\nAction: "
    for k, p in enumerate(SIM_INSTRUCTIONS)
)


def tiny_config(horizon: int = 8, vocab_size: int = 64, max_token_len: int = 16, pi05: bool = False) -> Pi0Config:
    return Pi0Config(
        paligemma=GemmaSpec(width=64, depth=2, mlp_dim=128, num_heads=2, num_kv_heads=1, head_dim=16),
        action_expert=GemmaSpec(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=16),
        vision=VisionSpec(image_size=28, patch_size=14, width=32, depth=2, mlp_dim=64, num_heads=2),
        vocab_size=vocab_size,
        action_horizon=horizon,
        max_token_len=max_token_len,
        pi05=pi05,
    )


def tiny_tokenizer_model(prompts: tuple[str, ...] = SIM_INSTRUCTIONS, vocab_size: int = 48) -> bytes:
    """A SentencePiece model with PaliGemma's special ids (pad 0, eos 1, bos 2, unk 3) and a "\\n" piece."""
    return train_sentencepiece(prompts * 4, vocab_size)


def make_tiny_checkpoint(
    folder: Path,
    joint_names: tuple[str, ...],
    camera_names: tuple[str, ...] = ("front", "wrist"),
    horizon: int = 8,
    dt_s: float = 0.1,
    seed: int = 0,
    variant: str = "pi0",
) -> Path:
    """Write the folder; cameras fill π₀'s slots in order, joints named *gripper* are absolute, others delta."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
    pi05 = variant == "pi05"
    if len(camera_names) > len(IMAGE_SLOTS):
        raise ValueError(f"at most {len(IMAGE_SLOTS)} cameras, got {list(camera_names)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spm = tiny_tokenizer_model(SIM_INSTRUCTIONS + PI05_EXAMPLES, 96) if pi05 else tiny_tokenizer_model()
    (folder / "tokenizer.model").write_bytes(spm)
    vocab = sentencepiece.SentencePieceProcessor(model_proto=spm).vocab_size()
    cfg = tiny_config(horizon, vocab_size=vocab, max_token_len=64 if pi05 else 16, pi05=pi05)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Pi0Model(cfg)
    cfg.save(folder / "config.json")
    save_weights(folder / WEIGHTS, model)
    d = len(joint_names)
    gripper = np.array([is_gripper(j) for j in joint_names])
    stats = DatasetStatistics(
        FeatureStats(np.zeros(d), np.ones(d), np.ones(d, bool)),
        FeatureStats(np.where(gripper, 0.02, 0.0), np.where(gripper, 0.01, 0.05), np.ones(d, bool)),
    )
    save_norm_stats(folder / NORM_STATS, stats)
    if pi05:  # π₀.5 normalises with quantiles: openpi's q01/q99 next to mean/std
        raw = json.loads((folder / NORM_STATS).read_text())
        for feature in raw["norm_stats"].values():
            mean, std = np.asarray(feature["mean"]), np.asarray(feature["std"])
            feature.update(q01=(mean - 2 * std).tolist(), q99=(mean + 2 * std).tolist())
        (folder / NORM_STATS).write_text(json.dumps(raw, indent=1))
    settings = Pi0Settings(
        joints=tuple(joint_names),
        cameras=dict(zip(IMAGE_SLOTS, camera_names)),
        relative_joints=relative_joints(joint_names),
        dt_s=dt_s,
        steps=5,
    )
    write_settings(folder / "pi0.yaml", settings, cfg.model_type, "vla_ros.backends.pi0.tiny")
    return folder


def main(argv: list[str] | None = None) -> None:
    from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--dt", type=float, default=0.1, help="seconds between chunk points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default="pi0", help="pi0 or pi05 (π₀.5)")
    args = parser.parse_args(argv)
    print(make_tiny_checkpoint(args.out, JOINT_NAMES, CAMERAS, args.horizon, args.dt, args.seed, args.variant))


if __name__ == "__main__":
    main()
