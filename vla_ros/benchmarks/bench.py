"""`vla-ros bench`: π₀ latency per stage, size, device, dtype and fast-path mode, with a lower bound.

    vla-ros bench [--size tiny,full] [--device cpu|cuda] [--dtype float32,bfloat16] [--modes eager,compile,cuda_graph]
                  [--cameras 1,3] [--repeats 30] [--profile]

Random weights, 48 prompt tokens (all valid), horizon 50, `--steps` Euler steps (10), 640x480 uint8
camera frames. Per row, p50 / p99 over `--repeats` chunks after `--warmup` chunks (the first
chunks compile / capture and are not counted):
  preprocess  frames -> pixels on the device (`pi0.fast.DeviceImages`: PIL resize in uint8, pinned
              staging, scaling on the device)
  prefix      SigLIP + Gemma over images and prompt into the KV cache
  step        the denoising loop's time / steps (the loop runs as one call in every mode)
  total       preprocess + prefix + loop
Times are wall clock with a device synchronisation after each stage. Peak memory: CUDA's
max_memory_allocated. Lower bound of one chunk: max(weights read once / measured copy bandwidth,
FLOPs / measured matmul rate), both rates measured in this run on this device and dtype; FLOPs
counted by torch's FlopCounterMode on one eager chunk; weights exclude the token-embedding table
(48 of its rows are read). `ratio` = total p50 / bound. `--profile` prints the CUDA kernels of
one chunk whose names say attention (which SDPA kernel ran).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
import torch

from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.checkpoint import build_model
from vla_ros.backends.pi0.configuration import IMAGE_SLOTS, Pi0Config
from vla_ros.backends.pi0.fast import DeviceImages, FastSampler
from vla_ros.backends.pi0.origin import default_profile
from vla_ros.backends.pi0.processing import Pi0Processor
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tiny import tiny_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
PROMPT_TOKENS = 48
HORIZON = 50


def bench_config(size: str, cameras: int) -> Pi0Config:
    cfg = Pi0Config() if size == "full" else tiny_config(horizon=HORIZON, vocab_size=257, max_token_len=PROMPT_TOKENS)
    return dataclasses.replace(
        cfg, image_slots=IMAGE_SLOTS[:cameras], action_horizon=HORIZON, max_token_len=PROMPT_TOKENS
    )


def processor_for(cfg: Pi0Config) -> Pi0Processor:
    cams = {slot: f"cam{i}" for i, slot in enumerate(cfg.image_slots)}
    settings = Pi0Settings(joints=("j",), cameras=cams)
    unit = FeatureStats(np.zeros(1), np.ones(1), np.ones(1, bool))
    return Pi0Processor(cfg, settings, DatasetStatistics(unit, unit), default_profile(cfg))


def measured_rates(device: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    """(copy bandwidth bytes/s counting read + write, matmul FLOP/s) on random data, median of 5 after warm-up."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    src = torch.randn((1 << 28 if device.type == "cuda" else 1 << 24) // 4, device=device)
    dst = torch.empty_like(src)

    def timed(fn) -> float:
        fn()
        sync()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    bandwidth = 2 * src.numel() * src.element_size() / timed(lambda: dst.copy_(src))
    rate = 2 * n**3 / timed(lambda: a @ b)
    return bandwidth, rate


def chunk_flops(model, pixels, valid, tokens, token_valid, state, noise, steps: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        cache = model.prefill(*model.embed_prefix(pixels, valid, tokens, token_valid))
        FastSampler(model, steps, "eager")(cache, state, noise)
    return float(counter.get_total_flops())


def weight_bytes(model) -> int:
    embed = model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight
    return sum(p.numel() * p.element_size() for p in model.parameters() if p is not embed)


def run_row(
    size: str,
    device: torch.device,
    dtype_name: str,
    mode: str,
    cameras: int,
    steps: int,
    repeats: int,
    warmup: int,
    profile: bool,
) -> dict:
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cfg = bench_config(size, cameras)
    torch.manual_seed(0)
    model = build_model(cfg, str(device), DTYPES[dtype_name])
    images = DeviceImages(processor_for(cfg), device)
    rng = np.random.default_rng(0)
    frames = {f"cam{i}": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for i in range(cameras)}
    tokens = torch.randint(0, cfg.vocab_size, (1, cfg.max_token_len), device=device)
    token_valid = torch.ones(1, cfg.max_token_len, dtype=torch.bool, device=device)
    state = torch.randn(1, cfg.state_dim, device=device)
    noise = torch.randn(1, cfg.action_horizon, cfg.action_dim, device=device)
    sampler = FastSampler(model, steps, mode)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def chunk() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        pixels, valid = images(frames)
        valid_t = torch.from_numpy(valid)[None].to(device)
        sync()
        t1 = time.perf_counter()
        with torch.no_grad():
            cache = model.prefill(*model.embed_prefix(pixels[None], valid_t, tokens, token_valid))
        sync()
        t2 = time.perf_counter()
        sampler(cache, state, noise)
        sync()
        t3 = time.perf_counter()
        return 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2)

    started = time.perf_counter()
    for _ in range(warmup):
        chunk()
    warmup_s = time.perf_counter() - started
    times = np.array([chunk() for _ in range(repeats)])
    pixels, valid = images(frames)
    flops = chunk_flops(
        model, pixels[None], torch.from_numpy(valid)[None].to(device), tokens, token_valid, state, noise, steps
    )
    bandwidth, rate = measured_rates(device, DTYPES[dtype_name])
    bound_ms = 1e3 * max(weight_bytes(model) / bandwidth, flops / rate)
    total = times.sum(axis=1)
    row = {
        "size": size,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "device": str(device),
        "dtype": dtype_name,
        "mode": sampler.mode,
        "cameras": cameras,
        "warmup_s": warmup_s,
        "pre": np.percentile(times[:, 0], [50, 99]),
        "prefix": np.percentile(times[:, 1], [50, 99]),
        "step": np.percentile(times[:, 2] / steps, [50, 99]),
        "total": np.percentile(total, [50, 99]),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
        "bound_ms": bound_ms,
        "ratio": float(np.percentile(total, 50)) / bound_ms,
        "gflop": flops / 1e9,
        "bandwidth_gbs": bandwidth / 1e9,
        "tflops": rate / 1e12,
    }
    if profile and cuda:
        row["attention_kernels"] = attention_kernels(chunk)
    return row


def attention_kernels(chunk) -> list[str]:
    """Names (and CUDA time) of the attention kernels one chunk runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        chunk()
    out = []
    for event in prof.key_averages():
        name = event.key.lower()
        if any(word in name for word in ("attention", "flash", "fmha", "efficient", "sdpa", "softmax")):
            out.append(f"{event.key[:90]} x{event.count} {getattr(event, 'device_time_total', 0) / 1e3:.2f} ms")
    return out


def pct(values) -> str:
    return f"{values[0]:.2f} / {values[1]:.2f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| size | device | dtype | mode | cameras | preprocess ms | prefix ms | per step ms | total ms | peak GPU GiB "
        "| lower bound ms | total / bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = "-" if np.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f}"
        lines.append(
            f"| {r['size']} ({r['params_m']:.3g}M) | {r['device']} | {r['dtype']} | {r['mode']} | {r['cameras']} "
            f"| {pct(r['pre'])} | {pct(r['prefix'])} | {pct(r['step'])} | {pct(r['total'])} | {peak} "
            f"| {r['bound_ms']:.3f} | {r['ratio']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vla-ros bench", description="π₀ latency table (random weights) with a lower bound"
    )
    parser.add_argument("--size", default="tiny", help="comma-separated: tiny, full")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="comma-separated: float32, bfloat16")
    parser.add_argument(
        "--modes", default="", help="comma-separated: eager, compile, cuda_graph (default: eager on CPU, all on CUDA)"
    )
    parser.add_argument("--cameras", default="3", help="comma-separated camera counts (1-3)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--profile", action="store_true", help="print the attention kernels of one chunk (CUDA)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    modes = (
        args.modes.split(",")
        if args.modes
        else (["eager", "compile", "cuda_graph"] if device.type == "cuda" else ["eager"])
    )
    rows = []
    for size in args.size.split(","):
        for dtype in args.dtype.split(","):
            for cameras in (int(c) for c in args.cameras.split(",")):
                for mode in modes:
                    row = run_row(
                        size, device, dtype, mode, cameras, args.steps, args.repeats, args.warmup, args.profile
                    )
                    rows.append(row)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # this row's model is gone
                    print(
                        f"# {size} {dtype} {mode} {cameras} cam: warm-up {row['warmup_s']:.1f} s, "
                        f"{row['gflop']:.3g} GFLOP/chunk, "
                        f"measured {row['bandwidth_gbs']:.0f} GB/s copy, {row['tflops']:.2f} TFLOP/s matmul",
                        flush=True,
                    )
                    for line in row.get("attention_kernels", []):
                        print(f"#   attention kernel: {line}", flush=True)
    load = os.getloadavg()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    )
    print(
        f"vla-ros bench: π₀, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {name}, torch {torch.__version__}, "
        f"load average {load[0]:.1f}, {PROMPT_TOKENS} prompt tokens, horizon {HORIZON}, {args.steps} steps, "
        f"{args.repeats} chunks after {args.warmup} warm-up (p50 / p99)"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
