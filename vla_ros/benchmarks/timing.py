"""What the model latency benchmarks share: the common command-line options, device setup (CPU
threads, a sync that waits for the GPU), wall-clock timing, p50/p99 lines and markdown table rows.

Times are milliseconds of wall clock; on CUDA each stage ends with a device sync so the time is the
GPU's, not the launch's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--size, --device, --dtype, --repeats, --warmup, --threads."""
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def device_sync(args: argparse.Namespace) -> Callable[[], None]:
    """Apply --threads; the function that waits for the device (a no-op on CPU)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return torch.cuda.synchronize if on_cuda(args) else (lambda: None)


def on_cuda(args: argparse.Namespace) -> bool:
    return args.device.startswith("cuda")


def elapsed_ms(start_s: float) -> float:
    """Milliseconds since `start_s` (a time.perf_counter() reading)."""
    return 1e3 * (time.perf_counter() - start_s)


def percentiles(values: list[float]) -> str:
    """'p50 … p99 …' of `values` (ms), fixed width."""
    return f"p50 {np.percentile(values, 50):9.2f}  p99 {np.percentile(values, 99):9.2f}"


def print_peak_memory(args: argparse.Namespace) -> None:
    """The peak GPU memory allocated so far (GiB), on CUDA only."""
    if on_cuda(args):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def print_table_header(*columns: str) -> None:
    """The header of a markdown table whose rows `print_row` prints."""
    print_row(*columns)
    print("|" + "---|" * len(columns), flush=True)


def print_row(*cells: object) -> None:
    """One markdown table row, printed at once (a long run shows each result as it comes)."""
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
