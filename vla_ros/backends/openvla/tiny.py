"""A complete tiny OpenVLA checkpoint folder with random weights, for tests and demos of the plumbing.

Same files and key layout as `openvla/openvla-7b` (config.json with norm_stats, sharded safetensors
+ index, preprocessor_config.json, tokenizer) plus the robot mapping (openvla.yaml), at toy sizes:
two 3-block ViTs with the DINOv2-reg4 / SigLIP flags on 28x28 images, a 2-layer Llama of width 8
with the real 32064-token vocabulary (so the action tokens and the empty token 29871 are the real
ids), a BPE tokenizer trained on a few sim prompts. With `oft=True` it is an OpenVLA-OFT folder:
plus `action_head--1_checkpoint.pt` and `proprio_projector--1_checkpoint.pt` (saved from DDP, keys
prefixed `module.`) and proprio statistics.

    python -m vla_ros.backends.openvla.tiny --out /tmp/openvla_tiny [--oft]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from vla_ros.backends.blocks.vit import DINOV2_REG4, SIGLIP, VitSpec
from vla_ros.backends.tiny import SIM_INSTRUCTIONS, is_gripper, relative_joints, write_settings

# timm ids under which the fixture script registers towers of these flags in the reference
TINY_TOWER_IDS = ("vit_tiny_patch14_reg4_dinov2_test", "vit_tiny_patch14_siglip_test")
TINY_TOWERS = tuple(VitSpec(embed_dim=16, depth=3, num_heads=2, mlp_dim=32, **kind) for kind in (DINOV2_REG4, SIGLIP))
TINY_TEXT_CONFIG = {
    "model_type": "llama",
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "vocab_size": 32064,
    "pad_token_id": 32000,
}
# openvla-7b's preprocessor_config.json means/stds (DINOv2: ImageNet in bfloat16; SigLIP: 0.5)
MEANS = ((0.484375, 0.455078125, 0.40625), (0.5, 0.5, 0.5))
STDS = ((0.228515625, 0.2236328125, 0.224609375), (0.5, 0.5, 0.5))
ACTION_TOKENS = (31744, 32000)  # token ids the reference's action tokenizer emits (32000 - digitized bin 1..256)


def tower_json(spec: VitSpec) -> dict:
    """A `vision_towers` entry of config.json (img_size comes from image_sizes)."""
    return {k: v for k, v in dataclasses.asdict(spec).items() if k != "img_size"}


def write_tokenizer(folder: Path, instructions: tuple[str, ...] = SIM_INSTRUCTIONS, vocab_size: int = 120) -> None:
    """tokenizer.json (BPE on the OpenVLA prompts of `instructions`, Llama's Metaspace pre-tokenizer,
    <unk>=0 <s>=1 </s>=2, BOS added) + tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from vla_ros.backends.openvla.processing import prompt

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator([prompt(i) for i in instructions] * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<unk>",
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def tiny_norm_stats(action_dim: int, gripper: list[bool], proprio_dim: int = 0) -> dict:
    """Two datasets (so `unnorm_key` is required); the gripper dims are not normalised (mask False).
    proprio_dim > 0 adds proprio statistics (OFT)."""
    import numpy as np

    rng = np.random.default_rng(0)

    def bounds(scale: float, dim: int, mask: list[bool]) -> dict:
        q01, q99 = -scale * rng.uniform(0.5, 1.0, dim), scale * rng.uniform(0.5, 1.0, dim)
        return {
            "q01": q01.tolist(),
            "q99": q99.tolist(),
            "mask": mask,
            "mean": ((q01 + q99) / 2).tolist(),
            "std": ((q99 - q01) / 4).tolist(),
            "min": (q01 * 1.2).tolist(),
            "max": (q99 * 1.2).tolist(),
        }

    def dataset(scale: float) -> dict:
        out = {
            "action": bounds(scale, action_dim, [not g for g in gripper]),
            "num_transitions": 1000,
            "num_trajectories": 10,
        }
        if proprio_dim:
            out["proprio"] = bounds(10 * scale, proprio_dim, [True] * proprio_dim)
        return out

    return {"sim_tabletop": dataset(0.05), "other_robot": dataset(0.5)}


def save_component(path: Path, module) -> None:
    """An OFT extra module as its authors save it: torch.save of the DDP-wrapped state dict."""
    import torch

    torch.save({f"module.{k}": v.to(torch.bfloat16) for k, v in module.state_dict().items()}, path)


def model_cameras(camera: str, wrist_cameras: tuple[str, ...] = ()) -> dict[str, str]:
    """OpenVLA's `cameras` setting: primary <- `camera`, then wrist (or wrist_1, wrist_2...) <- `wrist_cameras`."""
    wrists = ["wrist"] if len(wrist_cameras) == 1 else [f"wrist_{i + 1}" for i in range(len(wrist_cameras))]
    return {"primary": camera, **dict(zip(wrists, wrist_cameras))}


def make_tiny_checkpoint(
    folder: Path,
    joint_names: tuple[str, ...],
    camera: str = "front",
    image_size: int = 28,
    dt_s: float = 0.2,
    seed: int = 0,
    oft: bool = False,
    chunk_size: int = 4,
    wrist_cameras: tuple[str, ...] = (),
) -> Path:
    """Write the folder; the action dims are the robot's joints (gripper absolute, the others relative).
    OFT: chunks of `chunk_size`, the joints as proprio input, `wrist_cameras` as further images."""
    import torch

    from vla_ros.backends.openvla.checkpoint import save_sharded
    from vla_ros.backends.openvla.configuration import ImageProcessorConfig, OpenVLAConfig, OpenVLASettings
    from vla_ros.backends.openvla.modeling import L1RegressionActionHead, OpenVLAModel, ProprioProjector

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gripper = [is_gripper(j) for j in joint_names]
    raw = {
        "model_type": "openvla",
        "vision_backbone_id": "dinosiglip-vit-so-224px",
        "llm_backbone_id": "llama2-7b-pure",
        "arch_specifier": "no-align+fused-gelu-mlp",
        "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive",
        "timm_model_ids": list(TINY_TOWER_IDS),
        "image_sizes": [image_size, image_size],
        "timm_override_act_layers": [None, None],
        "vision_towers": [tower_json(t) for t in TINY_TOWERS],
        "text_config": TINY_TEXT_CONFIG,
        "n_action_bins": 256,
        "pad_to_multiple_of": 64,
        "pad_token_id": 32000,
        "norm_stats": tiny_norm_stats(len(joint_names), gripper, len(joint_names) if oft else 0),
    }
    cfg = OpenVLAConfig.from_json(raw)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = OpenVLAModel(cfg)
        randomize(model)
        if oft:
            save_component(
                folder / "action_head--1_checkpoint.pt", L1RegressionActionHead(cfg.hidden_size, len(joint_names))
            )
            save_component(
                folder / "proprio_projector--1_checkpoint.pt", ProprioProjector(cfg.hidden_size, len(joint_names))
            )
    save_sharded(folder, model.to(torch.bfloat16).state_dict())
    (folder / "config.json").write_text(json.dumps(raw, indent=1))
    processor = ImageProcessorConfig((image_size, image_size), MEANS, STDS, ("bicubic", "bicubic"))
    (folder / "preprocessor_config.json").write_text(json.dumps(processor.to_json(), indent=1))
    write_tokenizer(folder)
    settings = OpenVLASettings(
        joints=tuple(joint_names),
        cameras=model_cameras(camera, wrist_cameras if oft else ()),
        relative_joints=relative_joints(joint_names),
        unnorm_key="sim_tabletop",
        dt_s=dt_s,
        oft=oft,
        chunk_size=chunk_size,
        proprio_joints=tuple(joint_names) if oft else (),
    )
    write_settings(folder / "openvla.yaml", settings, "OpenVLA", "vla_ros.backends.openvla.tiny")
    return folder


def randomize(model, action_rows: tuple[int, int] = ACTION_TOKENS, action_gain: float = 4.0) -> None:
    """Weights of O(1) effect, rounded to bfloat16 (the checkpoints' dtype); the lm_head rows of the
    action tokens amplified so greedy decoding picks action tokens, as a trained model does."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 1.0 if "embed_tokens" in name else p.shape[-1] ** -0.5)
            elif name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "layernorm.weight")):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.2)
        head = model.language_model.lm_head.weight
        head[action_rows[0] : action_rows[1]] *= action_gain
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def main(argv: list[str] | None = None) -> None:
    from vla_ros.sim.tabletop import JOINT_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--dt", type=float, default=0.2, help="seconds between actions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oft", action="store_true", help="an OpenVLA-OFT folder (chunks, proprio, wrist image)")
    args = parser.parse_args(argv)
    wrist = ("wrist",) if args.oft else ()
    print(make_tiny_checkpoint(args.out, JOINT_NAMES, dt_s=args.dt, seed=args.seed, oft=args.oft, wrist_cameras=wrist))


if __name__ == "__main__":
    main()
