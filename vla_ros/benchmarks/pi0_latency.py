"""π₀ inference latency with random weights: prefix (SigLIP + Gemma 2B into the KV cache), one
denoising step (action expert over state + action tokens), and the whole chunk.

    python -m vla_ros.benchmarks.pi0_latency --size tiny --device cpu --dtype float32 --steps 10 \
        --cameras 3 --repeats 20

`full` is the real π₀ size (Gemma 2B + 300M expert + SigLIP So400m/14, 224x224, 48 prompt
tokens, 50 actions): ~3.3B parameters, 13 GB in float32 — a GPU job. `tiny` keeps the real token
layout (48 prompt tokens, 50 actions) at toy widths. Times are wall clock with a device sync
after the prefix and after every step; p50/p99 over `--repeats` runs after `--warmup` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from vla_ros.backends.blocks.flow import euler_integrate
from vla_ros.backends.pi0.checkpoint import build_model
from vla_ros.backends.pi0.configuration import IMAGE_SLOTS, Pi0Config
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.tiny import tiny_config
from vla_ros.benchmarks.timing import DTYPES, add_common_args, device_sync, elapsed_ms, percentiles, print_peak_memory


def benchmark_config(size: str, cameras: int) -> Pi0Config:
    cfg = Pi0Config() if size == "full" else tiny_config(horizon=50, vocab_size=257, max_token_len=48)
    return dataclasses.replace(cfg, image_slots=IMAGE_SLOTS[:cameras])


def random_inputs(cfg: Pi0Config, device: str, prompt_tokens: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c, s, L = len(cfg.image_slots), cfg.vision.image_size, cfg.max_token_len
    inputs = dict(
        images=torch.rand(1, c, 3, s, s, generator=g) * 2 - 1,
        image_valid=torch.ones(1, c, dtype=torch.bool),
        tokens=torch.randint(0, cfg.vocab_size, (1, L), generator=g),
        token_valid=torch.arange(L)[None] < min(prompt_tokens, L),
        state=torch.randn(1, cfg.state_dim, generator=g),
        noise=torch.randn(1, cfg.action_horizon, cfg.action_dim, generator=g),
    )
    return {k: v.to(device) for k, v in inputs.items()}


def run_once(model: Pi0Model, inputs: dict[str, torch.Tensor], steps: int, sync) -> tuple[float, list[float], float]:
    """(prefix ms, per-step ms, total ms) of one chunk."""
    step_ms: list[float] = []
    start = time.perf_counter()
    with torch.no_grad():
        prefix = model.embed_prefix(inputs["images"], inputs["image_valid"], inputs["tokens"], inputs["token_valid"])
        cache = model.prefill(*prefix)
        sync()
        prefix_done = time.perf_counter()
        field = model.denoiser(cache, inputs["state"])

        def timed(x: torch.Tensor, t: float) -> torch.Tensor:
            t0 = time.perf_counter()
            v = field(x, t)
            sync()
            step_ms.append(elapsed_ms(t0))
            return v

        euler_integrate(timed, inputs["noise"], steps)
        sync()
    end = time.perf_counter()
    return 1e3 * (prefix_done - start), step_ms, 1e3 * (end - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="π₀ latency benchmark (random weights)")
    add_common_args(parser)
    parser.add_argument("--steps", type=int, default=10, help="Euler steps")
    parser.add_argument("--cameras", type=int, choices=(1, 2, 3), default=3)
    args = parser.parse_args(argv)
    sync = device_sync(args)

    cfg = benchmark_config(args.size, args.cameras)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = build_model(cfg, args.device, DTYPES[args.dtype])
    params = sum(p.numel() for p in model.parameters())
    inputs = random_inputs(cfg, args.device)
    print(
        f"pi0 {args.size}: {params / 1e6:.1f}M params, built in {time.perf_counter() - t0:.1f} s; device "
        f"{args.device}, "
        f"{args.dtype}, {args.cameras} cameras, prefix {cfg.prefix_len} tokens, {cfg.action_horizon} actions, "
        f"{args.steps} steps, {args.repeats} repeats, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for _ in range(args.warmup):
        run_once(model, inputs, args.steps, sync)
    prefix_ms, step_ms, total_ms = [], [], []
    for _ in range(args.repeats):
        p, s, t = run_once(model, inputs, args.steps, sync)
        prefix_ms.append(p)
        step_ms.extend(s)
        total_ms.append(t)
    print(f"prefix ms    {percentiles(prefix_ms)}")
    print(f"per-step ms  {percentiles(step_ms)}")
    print(f"total ms     {percentiles(total_ms)}")
    print_peak_memory(args)


if __name__ == "__main__":
    main()
