"""A complete tiny SmolVLA folder in LeRobot's layout, with random weights, for tests and demos of the plumbing.

The files a LeRobot `save_pretrained` folder has (config.json of type smolvla, model.safetensors under
`model.`, policy_preprocessor.json / policy_postprocessor.json with their normaliser statistics), plus
what this backend needs offline (vlm_config.json: a toy SmolVLM2; a byte-level BPE tokenizer trained on
the sim prompts) and the robot mapping (smolvla.yaml). Toy sizes: vision 16 wide on 32x32 images with
8-pixel patches, language model 32 wide (2 of 3 layers kept), expert x0.5, cross-attention every other
layer as SmolVLA's default. Actions are absolute joint targets (LeRobot's), normalised around `home`.

    python -m vla_ros.backends.smolvla.tiny --out /tmp/smolvla_tiny [--robot so101]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.numpy import save_file

from vla_ros.backends.smolvla.backbone_files import bpe_tokenizer, sizes, smolvlm_config
from vla_ros.backends.smolvla.checkpoint import WEIGHTS, build_model, save_weights
from vla_ros.backends.smolvla.configuration import SmolVLAConfig, vlm_config_from_json
from vla_ros.backends.smolvla.settings import SmolVLASettings
from vla_ros.backends.tiny import SIM_INSTRUCTIONS

PRE_STATS = "policy_preprocessor_step_5_normalizer_processor.safetensors"
POST_STATS = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
# a toy SmolVLM2 (the real one: vision 768 wide x 12 layers on 512x512, language model 960 wide x 32 layers)
TINY_VISION = sizes(16, 32, 1, 2, patch_size=8, image_size=32)
TINY_TEXT = sizes(32, 64, 3, 4, num_key_value_heads=2, head_dim=8)


def lerobot_config(joints: int, cameras: tuple[str, ...], horizon: int, steps: int) -> dict:
    """config.json as LeRobot 0.6.1 writes it for SmolVLA (the fields this backend reads; LeRobot's defaults)."""

    def feature(kind: str, shape: list[int]) -> dict:
        return {"type": kind, "shape": shape}

    return {
        "type": "smolvla",
        "n_obs_steps": 1,
        "input_features": {
            **{f"observation.images.{c}": feature("VISUAL", [3, 480, 640]) for c in cameras},
            "observation.state": feature("STATE", [joints]),
        },
        "output_features": {"action": feature("ACTION", [joints])},
        "device": "cpu",
        "chunk_size": horizon,
        "n_action_steps": horizon,
        "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "max_state_dim": 32,
        "max_action_dim": 32,
        "resize_imgs_with_padding": [32, 32],
        "empty_cameras": 0,
        "adapt_to_pi_aloha": False,
        "use_delta_joint_actions_aloha": False,
        "tokenizer_max_length": 48,
        "num_steps": steps,
        "use_cache": True,
        "vlm_model_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
        "load_vlm_weights": False,
        "add_image_special_tokens": False,
        "attention_mode": "cross_attn",
        "prefix_length": -1,
        "pad_language_to": "longest",
        "num_expert_layers": -1,
        "num_vlm_layers": 2,
        "self_attn_every_n_layers": 2,
        "expert_width_multiplier": 0.5,
        "min_period": 4e-3,
        "max_period": 4.0,
        "rtc_config": None,
    }


def pipelines(config: dict) -> tuple[dict, dict]:
    """policy_preprocessor.json / policy_postprocessor.json as LeRobot's SmolVLA processor saves them."""
    features = {**config["input_features"], **config["output_features"]}
    norm_map = config["normalization_mapping"]
    pre = {
        "name": "policy_preprocessor",
        "steps": [
            {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
            {"registry_name": "to_batch_processor", "config": {}},
            {"registry_name": "smolvla_new_line_processor", "config": {}},
            {
                "registry_name": "tokenizer_processor",
                "config": {
                    "max_length": config["tokenizer_max_length"],
                    "task_key": "task",
                    "padding_side": "right",
                    "padding": config["pad_language_to"],
                    "truncation": True,
                    "tokenizer_name": config["vlm_model_name"],
                },
            },
            {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
            {
                "registry_name": "normalizer_processor",
                "config": {"eps": 1e-8, "features": features, "norm_map": norm_map},
                "state_file": PRE_STATS,
            },
        ],
    }
    post = {
        "name": "policy_postprocessor",
        "steps": [
            {
                "registry_name": "unnormalizer_processor",
                "config": {"eps": 1e-8, "features": config["output_features"], "norm_map": norm_map},
                "state_file": POST_STATS,
            },
            {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        ],
    }
    return pre, post


def make_tiny_checkpoint(
    folder: Path,
    joint_names: tuple[str, ...],
    camera_names: tuple[str, ...] = ("front", "wrist"),
    home: tuple[float, ...] | None = None,
    horizon: int = 8,
    dt_s: float = 0.1,
    seed: int = 0,
    steps: int = 3,
) -> Path:
    """Write the folder for a robot's joints, cameras and home pose: LeRobot's layout, absolute joint actions
    around `home` (zeros if None)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = bpe_tokenizer(folder, [p + "\n" for p in SIM_INSTRUCTIONS] * 4, 320)
    vlm = json.loads(smolvlm_config(TINY_VISION, TINY_TEXT, 2, len(tokenizer)).to_json_string())
    (folder / "vlm_config.json").write_text(json.dumps(vlm, indent=2))
    config = lerobot_config(len(joint_names), tuple(camera_names), horizon, steps)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    cfg = SmolVLAConfig.from_json(config).with_vlm(vlm_config_from_json(vlm, "vlm_config.json"), "vlm_config.json")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(cfg, empty=False)
    save_weights(folder / WEIGHTS, model)
    pre, post = pipelines(config)
    (folder / "policy_preprocessor.json").write_text(json.dumps(pre, indent=2))
    (folder / "policy_postprocessor.json").write_text(json.dumps(post, indent=2))
    d = len(joint_names)
    center = np.zeros(d) if home is None else np.asarray(home, np.float64)
    stats = {
        "observation.state": {"mean": center, "std": np.full(d, 0.5)},
        "action": {"mean": center, "std": np.full(d, 0.05)},
    }
    flat = {f"{k}.{s}": v.astype(np.float32) for k, feature in stats.items() for s, v in feature.items()}
    save_file(flat, str(folder / PRE_STATS))
    save_file({k: v for k, v in flat.items() if k.startswith("action.")}, str(folder / POST_STATS))
    mapping = {"joints": list(joint_names), "cameras": {c: c for c in camera_names}, "dt_s": dt_s}
    SmolVLASettings.from_dict(mapping, "smolvla.yaml")  # what is written must load
    (folder / "smolvla.yaml").write_text(
        "# robot mapping of a tiny random-weight SmolVLA (vla_ros.backends.smolvla.tiny)\n" + yaml.safe_dump(mapping)
    )
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--robot", default="sim", help="robot config whose joints, cameras and home pose it fits")
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--dt", type=float, default=0.1, help="seconds between chunk points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from vla_ros.config import load_robot_config

    robot = load_robot_config(args.robot)
    cameras = tuple(c.name for c in robot.cameras)
    print(make_tiny_checkpoint(args.out, robot.joint_names, cameras, robot.home, args.horizon, args.dt, args.seed))


if __name__ == "__main__":
    main()
