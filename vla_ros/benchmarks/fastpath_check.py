"""π₀ fast paths against the eager float32 path at one size and device: max |Δ| of the chunk.

    python -m vla_ros.benchmarks.fastpath_check --size full --device cuda --modes eager,cuda_graph,compile

Random weights (seed 0), 3 cameras, 48 prompt tokens, horizon 50, 10 steps; the same inputs and
noise through: float32 eager (the reference), float32 in each mode, bfloat16 in each mode. float32
modes should agree to float32 rounding (CUDA: TF32 is off here), bfloat16 ones within bf16 tolerance.
"""

from __future__ import annotations

import argparse
import time

import torch

from vla_ros.backends.pi0.checkpoint import build_model
from vla_ros.backends.pi0.fast import FastSampler
from vla_ros.benchmarks.bench import DTYPES, bench_config
from vla_ros.benchmarks.timing import print_row, print_table_header


def chunk(model, inputs, steps: int, mode: str) -> torch.Tensor:
    images, valid, tokens, token_valid, state, noise = inputs
    with torch.no_grad():
        cache = model.prefill(*model.embed_prefix(images.to(model.dtype), valid, tokens, token_valid))
    sampler = FastSampler(model, steps, mode)
    sampler(cache, state, noise)  # compile / capture
    return sampler(cache, state, noise).float()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="π₀ fast paths vs eager float32 (max |delta|)")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    cfg = bench_config(args.size, args.cameras)
    g = torch.Generator().manual_seed(1)
    c, s, n = args.cameras, cfg.vision.image_size, cfg.max_token_len
    inputs = [
        torch.rand(1, c, 3, s, s, generator=g) * 2 - 1,
        torch.ones(1, c, dtype=torch.bool),
        torch.randint(0, cfg.vocab_size, (1, n), generator=g),
        torch.ones(1, n, dtype=torch.bool),
        torch.randn(1, cfg.state_dim, generator=g),
        torch.randn(1, cfg.action_horizon, cfg.action_dim, generator=g),
    ]
    inputs = [t.to(device) for t in inputs]
    torch.manual_seed(0)
    reference_model = build_model(cfg, str(device), torch.float32)
    weights = (
        {k: v.to("cpu") for k, v in reference_model.state_dict().items()}
        if device.type == "cuda"
        else reference_model.state_dict()
    )
    reference = chunk(reference_model, inputs, args.steps, "eager")
    print_table_header(
        "size", "device", "dtype", "mode", "max abs delta vs eager float32", "max abs reference", "first call s"
    )
    models = {"float32": reference_model}
    for dtype in args.dtypes.split(","):
        if dtype not in models:
            models[dtype] = build_model(cfg, str(device), DTYPES[dtype])
            models[dtype].load_state_dict(weights)
            models[dtype].set_dtype(DTYPES[dtype])
    for mode in args.modes.split(","):  # modes outer: the slow compiles come last
        for dtype in args.dtypes.split(","):
            started = time.perf_counter()
            try:
                out = chunk(models[dtype], inputs, args.steps, mode)
            except Exception as exc:  # noqa: BLE001 - report and go on with the other modes
                print_row(args.size, device, dtype, mode, f"failed: {type(exc).__name__}: {str(exc)[:120]}", "", "")
                continue
            delta = (out - reference).abs().max().item()
            reference_max = reference.abs().max().item()
            seconds = time.perf_counter() - started
            print_row(args.size, device, dtype, mode, f"{delta:.3e}", f"{reference_max:.3f}", f"{seconds:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
