"""LeRobot 0.6.1's PI0 doing the work `vla-ros bench --size full` times: random weights, bfloat16,
1 or 3 cameras (640x480 frames in [0, 1], resized with padding to 224 by LeRobot itself), 48
prompt tokens, horizon 50, 10 denoising steps; `predict_action_chunk` p50 / p99 in ms over
--repeats after --warmup, with a CUDA synchronisation around each. Runs where LeRobot is importable
(the GPU machine's Python 3.12 with the wheels of scripts/fetch_gpu_wheels.sh); prints one
markdown row per camera count.

    python3 scripts/lerobot_pi0_latency.py --cameras 1,3 --repeats 30
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def build(cameras: int, device: str):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi0.configuration_pi0 import PI0Config
    from lerobot.policies.pi0.modeling_pi0 import PI0Policy

    names = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")[:cameras]
    images = {f"observation.images.{n}": PolicyFeature(FeatureType.VISUAL, (3, 480, 640)) for n in names}
    config = PI0Config(
        dtype="bfloat16",
        chunk_size=50,
        n_action_steps=50,
        num_inference_steps=10,
        tokenizer_max_length=48,
        device=device,
        input_features={**images, "observation.state": PolicyFeature(FeatureType.STATE, (32,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (32,))},
    )
    with torch.device(device):
        policy = PI0Policy(config)
    policy.to(device).eval()
    g = torch.Generator().manual_seed(0)
    batch = {f"observation.images.{n}": torch.rand(1, 3, 480, 640, generator=g).to(device) for n in names}
    batch["observation.state"] = torch.randn(1, 32, generator=g).to(device)
    batch["observation.language.tokens"] = torch.randint(0, 257152, (1, 48), generator=g).to(device)
    batch["observation.language.attention_mask"] = torch.ones(1, 48, dtype=torch.bool, device=device)
    return policy, batch


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", default="1,3")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    import lerobot

    print(
        f"LeRobot {getattr(lerobot, '__version__', '?')} PI0, torch {torch.__version__}, {torch.cuda.get_device_name()}"
    )
    print("| reference | cameras | total ms p50 / p99 | peak GPU GiB |")
    print("|---|---|---|---|")
    for cameras in (int(c) for c in args.cameras.split(",")):
        policy, batch = build(cameras, args.device)
        torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.no_grad():
            for i in range(args.warmup + args.repeats):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                policy.predict_action_chunk(batch)
                torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(1e3 * (time.perf_counter() - t0))
        p50, p99 = np.percentile(times, [50, 99])
        print(
            f"| LeRobot 0.6.1 PI0, bfloat16 | {cameras} | {p50:.2f} / {p99:.2f} "
            f"| {torch.cuda.max_memory_allocated() / 2**30:.2f} |",
            flush=True,
        )
        del policy, batch
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
