"""Remote inference on loopback: round-trip overhead beyond inference, and throughput with several clients.

`python -m vla_ros.benchmarks.remote_roundtrip [--model-path models/demo] [--requests 300] [--seconds 8]`

Starts `vla-ros serve` in another process and talks to it with the `openpi_remote` link. Requests
carry two 224x224 RGB images + the joint state (as a robot would send them; the server resizes).
Overhead = client round trip - the server's own inference time (serialisation, websocket framing,
loopback TCP, queueing). Throughput: chunks/s over all clients, with the server batching concurrent
requests (--max-batch 4, --batch-wait-ms 2) and without (--max-batch 1). Prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vla_ros.core.types import Observation
from vla_ros.paths import resolve_package_path
from vla_ros.remote.client import LinkSettings, PolicyLink
from vla_ros.remote.schema import make_request
from vla_ros.serving.local_server import ServedPolicy
from vla_ros.sim.tabletop import JOINT_NAMES


def request(seed: int, size: int = 224) -> dict:
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return make_request(
        Observation(0.0, images, JOINT_NAMES, rng.uniform(-0.5, 0.5, len(JOINT_NAMES)), "reach the red cube")
    )


def percentiles_ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "mean": round(float(a.mean()), 3),
    }


def warm_up(url: str, requests: int = 10) -> None:
    """A few requests so that the measured ones do not pay the model's first calls."""
    link = PolicyLink(LinkSettings(url, timeout_s=60.0))
    link.connect()
    for _ in range(requests):
        link.infer(request(0))
    link.close()


def overhead(url: str, requests: int) -> dict:
    """Round trip, server inference and their difference over `requests` sequential requests."""
    link = PolicyLink(LinkSettings(url, timeout_s=30.0))
    link.connect()
    req = request(0)
    rtt, infer, over = [], [], []
    for _ in range(requests):
        _, timing = link.infer(req)
        rtt.append(timing.round_trip_s)
        infer.append(timing.server_infer_s)
        over.append(timing.round_trip_s - timing.server_infer_s)
    link.close()
    return {
        "round_trip_ms": percentiles_ms(rtt),
        "server_inference_ms": percentiles_ms(infer),
        "overhead_ms": percentiles_ms(over),
    }


def throughput(url: str, clients: int, seconds: float) -> dict:
    """Chunks per second over `clients` concurrent clients (one thread each) for `seconds`."""
    links = [PolicyLink(LinkSettings(url, timeout_s=60.0)) for _ in range(clients)]
    for link in links:
        link.connect()
        link.infer(request(0))
    counts = [0] * clients
    batch_sizes: list[int] = []
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1)

    def run(k: int) -> None:
        req = request(k)
        barrier.wait()
        while not stop.is_set():
            response, _ = links[k].infer(req)
            counts[k] += 1
            batch_sizes.append(int(response["server_timing"]["batch_size"]))

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.perf_counter() - start
    for link in links:
        link.close()
    return {
        "clients": clients,
        "chunks_per_s": round(sum(counts) / elapsed, 2),
        "mean_batch": round(float(np.mean(batch_sizes)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="octo")
    parser.add_argument("--model-path", default="models/demo")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests for the overhead")
    parser.add_argument("--seconds", type=float, default=8.0, help="per throughput measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--num-threads", type=int, default=1, help="server torch threads")
    args = parser.parse_args(argv)
    model = resolve_package_path(args.model_path)
    common = ("--num-threads", str(args.num_threads))
    with tempfile.TemporaryDirectory() as tmp:
        with ServedPolicy(args.backend, model, Path(tmp) / "serve.log", *common) as served:
            warm_up(served.url)
            print(
                json.dumps(
                    {"benchmark": "overhead", "images": "2x 224x224x3 uint8", **overhead(served.url, args.requests)}
                ),
                flush=True,
            )
            unbatched = {n: throughput(served.url, n, args.seconds) for n in args.clients}
        with ServedPolicy(
            args.backend, model, Path(tmp) / "serve-batched.log", *common, "--max-batch", "4", "--batch-wait-ms", "2"
        ) as served:
            warm_up(served.url)
            batched = {n: throughput(served.url, n, args.seconds) for n in args.clients}
    for n in args.clients:
        print(
            json.dumps(
                {
                    "benchmark": "throughput",
                    "clients": n,
                    "unbatched_chunks_per_s": unbatched[n]["chunks_per_s"],
                    "batched_chunks_per_s": batched[n]["chunks_per_s"],
                    "batched_mean_batch": batched[n]["mean_batch"],
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
