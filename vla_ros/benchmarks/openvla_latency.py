"""OpenVLA inference latency with random weights: prefill (both ViT towers, projector, Llama over
[BOS, 256 patches, prompt] into the KV cache, first token), each further token, the whole action;
and the OpenVLA-OFT chunk (one bidirectional pass + L1 head).

    python -m vla_ros.benchmarks.openvla_latency --size tiny --device cpu --repeats 20
    python -m vla_ros.benchmarks.openvla_latency --size full --device cuda --dtype bfloat16 --static-cache

`full` is openvla-7b (DINOv2 ViT-L + SigLIP So400m at 224 px, Llama-2 7B): 7.54B parameters,
15 GB in bfloat16 — a GPU job. `tiny` keeps the real token layout (224 px images -> 256 patches,
a 20-token prompt, 7 action tokens, OFT chunk 8) at toy widths. Times are wall clock with a
device sync after each stage; p50/p99 over `--repeats` runs after `--warmup` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from vla_ros.backends.openvla.checkpoint import build_model
from vla_ros.backends.openvla.configuration import OPENVLA_7B, OpenVLAConfig
from vla_ros.backends.openvla.modeling import L1RegressionActionHead, OpenVLAModel
from vla_ros.backends.openvla.tiny import TINY_TEXT_CONFIG, TINY_TOWERS
from vla_ros.benchmarks.timing import DTYPES, add_common_args, device_sync, elapsed_ms, percentiles, print_peak_memory

PROMPT_TOKENS = 20  # "In: What action should the robot take to <task>?\nOut:" + the empty token, typical length
ACTION_DIM = 7


def benchmark_config(size: str) -> OpenVLAConfig:
    if size == "full":
        return OpenVLAConfig.from_json(OPENVLA_7B)
    towers = tuple(dataclasses.replace(t, img_size=224) for t in TINY_TOWERS)
    return OpenVLAConfig(towers=towers, text_config=TINY_TEXT_CONFIG)


def run_tokens(
    model: OpenVLAModel, pixels: torch.Tensor, ids: torch.Tensor, static: bool, sync
) -> tuple[float, list[float], float]:
    """(prefill ms incl. vision and the first token, per-token ms, total ms) of one 7-token action."""
    token_ms: list[float] = []
    start = time.perf_counter()
    with torch.no_grad():
        embeds = model.embed(pixels, ids)
        cache = model.new_cache(embeds.shape[1] + ACTION_DIM, static)
        token = model.prefill(embeds, cache).argmax()
        sync()
        prefilled = time.perf_counter()
        for i in range(1, ACTION_DIM):
            t0 = time.perf_counter()
            token = model.step(token, embeds.shape[1] + i - 1, cache).argmax()
            sync()
            token_ms.append(elapsed_ms(t0))
    end = time.perf_counter()
    return 1e3 * (prefilled - start), token_ms, 1e3 * (end - start)


def run_chunk(
    model: OpenVLAModel, head: L1RegressionActionHead, pixels: torch.Tensor, ids: torch.Tensor, chunk: int, sync
) -> float:
    """ms of one OFT chunk (vision, projector, one parallel pass, head)."""
    start = time.perf_counter()
    with torch.no_grad():
        hidden = model.parallel_hidden(model.embed(pixels, ids), chunk * ACTION_DIM, stop_token_id=2)
        head(hidden, chunk)
        sync()
    return elapsed_ms(start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenVLA latency benchmark (random weights)")
    add_common_args(parser)
    parser.add_argument("--attention", choices=("sdpa", "eager"), default="sdpa")
    parser.add_argument("--static-cache", action="store_true", help="preallocated KV cache")
    parser.add_argument("--chunk", type=int, default=8, help="OFT actions per chunk (LIBERO 8, ALOHA 25)")
    args = parser.parse_args(argv)
    sync = device_sync(args)

    cfg = benchmark_config(args.size)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = build_model(cfg, args.device, DTYPES[args.dtype], args.attention)
    with torch.device(args.device):
        head = L1RegressionActionHead(cfg.hidden_size, ACTION_DIM).to(DTYPES[args.dtype]).eval()
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    size = cfg.towers[0].img_size
    pixels = (torch.rand(1, 3 * len(cfg.towers), size, size, generator=g) * 2 - 1).to(args.device)
    ids = torch.cat(
        [torch.tensor([[1]]), torch.randint(3, 29000, (1, PROMPT_TOKENS - 2), generator=g), torch.tensor([[29871]])], 1
    ).to(args.device)
    print(
        f"openvla {args.size}: {params / 1e9:.3f}B params, built in {time.perf_counter() - t0:.1f} s; "
        f"device {args.device}, {args.dtype}, {args.attention}, {'static' if args.static_cache else 'dynamic'} cache, "
        f"{cfg.num_patches} patches + {PROMPT_TOKENS} prompt tokens, {ACTION_DIM} action tokens, "
        f"OFT chunk {args.chunk}, {args.repeats} repeats, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for _ in range(args.warmup):
        run_tokens(model, pixels, ids, args.static_cache, sync)
        run_chunk(model, head, pixels, ids, args.chunk, sync)
    prefill_ms, token_ms, total_ms, chunk_ms = [], [], [], []
    for _ in range(args.repeats):
        p, t, total = run_tokens(model, pixels, ids, args.static_cache, sync)
        prefill_ms.append(p)
        token_ms.extend(t)
        total_ms.append(total)
        chunk_ms.append(run_chunk(model, head, pixels, ids, args.chunk, sync))
    print(f"prefill ms (vision + first token)  {percentiles(prefill_ms)}")
    print(f"per-token ms                        {percentiles(token_ms)}")
    print(f"7-token action ms                   {percentiles(total_ms)}")
    print(f"OFT chunk of {args.chunk} ms                  {percentiles(chunk_ms)}")
    print_peak_memory(args)


if __name__ == "__main__":
    main()
