"""SmolVLA latency at the published size (or the tiny one), random weights: prefix, denoising step and chunk, p50/p99.

The full size is SmolVLM2-500M-Video-Instruct's published config (vision 768 x 12 layers on 512x512 images,
language model 960 wide cut to 16 of 32 layers) with lerobot/smolvla_base's policy config (cross-attention
every other layer, expert x0.75, chunk 50, 10 steps): 402.7M parameters (450.0M with the VLM's unused
lm_head, the published SmolVLA size).

    python -m vla_ros.backends.smolvla.latency --size full --device cpu --dtype float32 --cameras 2 --runs 5
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from vla_ros.backends.blocks.flow import euler_integrate
from vla_ros.backends.smolvla.checkpoint import build_model
from vla_ros.backends.smolvla.configuration import SmolVLAConfig, vlm_config_from_json

# HuggingFaceTB/SmolVLM2-500M-Video-Instruct config.json: the fields the model is built from
SMOLVLM2_500M = {
    "model_type": "smolvlm",
    "scale_factor": 4,
    "vocab_size": 49280,
    "tie_word_embeddings": False,
    "text_config": {
        "model_type": "llama",
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "vocab_size": 49280,
        "max_position_embeddings": 8192,
        "pad_token_id": 2,
    },
    "vision_config": {
        "model_type": "smolvlm_vision",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "patch_size": 16,
        "image_size": 512,
    },
}
TINY = {
    **SMOLVLM2_500M,
    "scale_factor": 2,
    "vocab_size": 320,
    "text_config": {**SMOLVLM2_500M["text_config"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3}
    | {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 320},
    "vision_config": {**SMOLVLM2_500M["vision_config"], "hidden_size": 16, "intermediate_size": 32}
    | {"num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 8, "image_size": 32},
}


def policy_config(size: str, cameras: int) -> dict:
    """lerobot/smolvla_base's policy fields (LeRobot 0.6.1 defaults) for an SO-101-like 6-dof arm."""
    features = {f"observation.images.camera{i + 1}": {"type": "VISUAL", "shape": [3, 480, 640]} for i in range(cameras)}
    features["observation.state"] = {"type": "STATE", "shape": [6]}
    raw = {
        "type": "smolvla",
        "input_features": features,
        "output_features": {"action": {"type": "ACTION", "shape": [6]}},
    }
    if size == "tiny":
        raw.update(num_vlm_layers=2, expert_width_multiplier=0.5, resize_imgs_with_padding=[32, 32], chunk_size=8)
    return raw


def build(size: str, cameras: int, device: str, dtype: torch.dtype):
    vlm = vlm_config_from_json(SMOLVLM2_500M if size == "full" else TINY, f"{size} SmolVLM2")
    cfg = SmolVLAConfig.from_json(policy_config(size, cameras)).with_vlm(vlm, f"{size} SmolVLA")
    model = build_model(cfg, device, torch.float32)  # uninitialised: fill with small values, then cast
    g = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            value = torch.randn(p.shape, generator=g) * (0.02 if p.dim() > 1 or "bias" in name else 0.1)
            p.copy_(value + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model.set_dtype(dtype).eval()


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2)}


def measure(size: str, device: str, dtype: str, cameras: int, steps: int, runs: int, warmup: int = 1) -> dict:
    model = build(size, cameras, device, {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype])
    cfg = model.cfg
    width, height = cfg.resize
    pixels = torch.rand(1, cameras, 3, height, width, device=device) * 2 - 1
    tokens = torch.randint(0, cfg.text.vocab_size, (1, 12), device=device)
    valid = torch.ones(1, 12, dtype=torch.bool, device=device)
    state = torch.randn(1, cfg.max_state_dim, device=device)
    noise = torch.randn(1, cfg.chunk_size, cfg.max_action_dim, device=device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    prefix_s, step_s, total_s = [], [], []
    with torch.no_grad():
        for run in range(warmup + runs):
            sync()
            start = time.perf_counter()
            cache = model.prefill(*model.embed_prefix(pixels, tokens, valid, state))
            sync()
            mid = time.perf_counter()
            out = euler_integrate(model.denoiser(cache), noise, steps)
            sync()
            end = time.perf_counter()
            assert torch.isfinite(out).all()
            if run >= warmup:
                prefix_s.append(mid - start)
                step_s.append((end - mid) / steps)
                total_s.append(end - start)
    return {
        "size": size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": device,
        "dtype": dtype,
        "cameras": cameras,
        "steps": steps,
        "chunk": cfg.chunk_size,
        "threads": torch.get_num_threads(),
        "runs": runs,
        "prefix_ms": percentiles(prefix_s),
        "step_ms": percentiles(step_s),
        "total_ms": percentiles(total_s),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.size, args.device, args.dtype, args.cameras, args.steps, args.runs)))


if __name__ == "__main__":
    main()
