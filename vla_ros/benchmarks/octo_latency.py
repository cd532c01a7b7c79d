"""Latency of one released-Octo chunk (transformer + 20 diffusion steps) per layout, device and mode.

    python -m vla_ros.benchmarks.octo_latency [--layouts small,base] [--device cpu|cuda]
        [--modes eager,compile,cuda_graph] [--dtype float32|bfloat16] [--repeats 20] [--warmup 3]

Random weights at the octo-small-1.5 / octo-base-1.5 layouts (primary 256x256 -> 256 tokens, wrist
128x128 -> 64 tokens, 16 language tokens repeated per step, window 2: 690 tokens), batch 1, inputs
already on the device (camera preprocessing and the T5 encoder, which runs once per instruction, are
not included). Per row, p50 / p99 in milliseconds of `readouts` (tokenizers + transformer), `head`
(the 20 sampling steps) and `chunk` (both), after `--warmup` chunks that compile / capture.
Modes: eager; compile (torch.compile of the whole chunk); cuda_graph (the whole chunk, the 20 steps
included, captured once as one CUDA graph and replayed with fresh inputs copied into its buffers).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vla_ros.backends.octo.configuration import ImageGroupConfig, OctoNetConfig
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.benchmarks.timing import print_row, print_table_header

LAYOUTS = {
    "small": dict(width=384, depth=12, num_heads=6, mlp_dim=1536),
    "base": dict(width=768, depth=12, num_heads=12, mlp_dim=3072),
}


def layout_config(name: str) -> OctoNetConfig:
    images = (ImageGroupConfig("primary", (256, 256)), ImageGroupConfig("wrist", (128, 128)))
    return OctoNetConfig(images=images, **LAYOUTS[name])


def example_inputs(cfg: OctoNetConfig, device: torch.device, dtype: torch.dtype, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    t = cfg.window_size
    images = {i.name: torch.rand(1, t, 3, *i.image_size, generator=g) * 2 - 1 for i in cfg.images}
    return {
        "images": {k: v.to(device, dtype) for k, v in images.items()},
        "image_valid": {i.name: torch.ones(1, t, dtype=torch.bool, device=device) for i in cfg.images},
        "timestep_valid": torch.tensor([[False] + [True] * (t - 1)], device=device),
        "goals": {},
        "language": torch.randn(1, cfg.language_tokens, cfg.language_dim, generator=g).to(device, dtype),
        "language_valid": torch.ones(1, dtype=torch.bool, device=device),
    }


def chunk_fn(net: OctoNet):
    """inputs, noises (K + 1, 1, H*A) -> (readout embedding (1, W), chunk (1, H, A)); the last window step."""

    def run(inputs: dict, noises: torch.Tensor):
        embedding = net.embedding(net(**inputs)[:, -1])
        return embedding, net.head.sample(embedding, noises)

    return run


def timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - start) * 1e3


def bench(layout: str, device: torch.device, dtype: torch.dtype, mode: str, repeats: int, warmup: int) -> dict:
    cfg = layout_config(layout)
    net = OctoNet(cfg).to(device, dtype).eval()
    net.head.betas = net.head.betas.float()  # the schedule stays float32 (as the reference's)
    inputs = example_inputs(cfg, device, dtype)
    flat = cfg.action_horizon * cfg.action_dim
    noises = torch.randn(cfg.diffusion_steps + 1, 1, flat, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    run = chunk_fn(net)
    if mode == "compile":
        run = torch.compile(run)
    with torch.inference_mode():
        net.rule_mask(True, cfg.window_size, device)  # built once per layout, outside the timing
        if mode == "cuda_graph":
            if device.type != "cuda":
                raise SystemExit("cuda_graph needs --device cuda")
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    run(inputs, noises)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = run(inputs, noises)
            fresh = example_inputs(cfg, device, dtype, seed=1)

            def chunk():
                for k, v in fresh["images"].items():
                    inputs["images"][k].copy_(v)
                noises.normal_()
                graph.replay()
                return static_out

            stages = {"chunk": chunk}
        else:
            stages = {
                "readouts": lambda: net(**inputs),
                "head": lambda: net.head.sample(torch.zeros(1, cfg.width, device=device, dtype=dtype), noises),
                "chunk": lambda: run(inputs, noises),
            }
        for _ in range(warmup):
            stages["chunk"]()
        times = {name: [timed(fn, sync) for _ in range(repeats)] for name, fn in stages.items()}
    params = sum(p.numel() for p in net.parameters())
    row = {"layout": layout, "params_m": params / 1e6, "device": str(device), "dtype": str(dtype)[6:], "mode": mode}
    for name, ts in times.items():
        row[f"{name}_p50_ms"] = float(np.percentile(ts, 50))
        row[f"{name}_p99_ms"] = float(np.percentile(ts, 99))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", default="small,base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default="eager")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    print_table_header(
        "layout", "params (M)", "device", "dtype", "mode", "readouts p50/p99 ms", "head p50/p99 ms", "chunk p50/p99 ms"
    )
    for layout in args.layouts.split(","):
        for mode in args.modes.split(","):
            r = bench(layout, device, dtype, mode, args.repeats, args.warmup)

            def cell(name: str) -> str:
                return f"{r[f'{name}_p50_ms']:.2f} / {r[f'{name}_p99_ms']:.2f}" if f"{name}_p50_ms" in r else "-"

            cells = [cell(stage) for stage in ("readouts", "head", "chunk")]
            print_row(layout, f"{r['params_m']:.1f}", r["device"], r["dtype"], mode, *cells)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
