"""π₀'s fast inference path: the whole denoising loop as one static-shape call, run eagerly, through
`torch.compile`, or replayed as one CUDA graph; camera frames scaled on the device from uint8.

`FastSampler(model, steps, mode)` samples a chunk from a prefix KV cache exactly as
`euler_integrate(model.denoiser(cache, state), noise, steps)` does (same operations, same order),
with what a graph needs: the cache copied once per observation into static buffers (the "static
KV cache": fixed addresses, shapes fixed by the camera count and the prompt length), the flow
times as constants, no host synchronisation and no Python between steps.

Modes:
  eager       the loop in Python (the reference the others are tested against)
  compile     `torch.compile(fullgraph=True)` of the 10-step loop (CPU: inductor's C++ code; CUDA:
              Triton kernels); the first call per shape compiles (seconds to minutes: warm it up)
  cuda_graph  the loop captured once per shape as a `torch.cuda.CUDAGraph` and replayed (CUDA only)
  auto        cuda_graph on CUDA, eager elsewhere

Attention inside runs through `F.scaled_dot_product_attention` with openpi's block mask as an
additive bias (B, 1, Nq, Nk) in the model dtype: the fused memory-efficient kernel takes it on
CUDA (flash attention does not take a mask); `benchmarks.bench` prints which kernels ran.

`DeviceImages` turns camera frames into the model's (C, 3, S, S) pixels with the scaling on the
device: frames are resized in uint8 on the CPU exactly as the checkpoint's origin does it
(openpi: PIL bilinear), staged in a pinned uint8 buffer, copied asynchronously and scaled to
[-1, 1] there; the LeRobot origin (torch bilinear on float /255) is resized on the device. On the
CPU the result is bit-identical to `Pi0Processor.images`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.paligemma import KVCache
from vla_ros.backends.pi0.processing import Pi0Processor, fitted_size, resize_with_pad_pil

MODES = ("eager", "compile", "cuda_graph", "auto")


def resolve_mode(mode: str, device: torch.device) -> str:
    if mode not in MODES:
        raise ValueError(f"fast_path: must be one of {list(MODES)}, got {mode!r}")
    if mode == "auto":
        return "cuda_graph" if device.type == "cuda" else "eager"
    if mode == "cuda_graph" and device.type != "cuda":
        raise ValueError(f"fast_path: cuda_graph needs a CUDA device, the model is on {device}")
    return mode


class FastSampler:
    """Chunk sampler over a prefix KV cache: (cache, state, noise) -> actions (B, H, action_dim) float32."""

    def __init__(self, model: Pi0Model, steps: int, mode: str = "auto", compile_backend: str = "inductor"):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.model = model
        self.steps = steps
        self.device = next(model.parameters()).device
        self.mode = resolve_mode(mode, self.device)
        compiled = self.mode == "compile"
        self._compiled = (
            torch.compile(self._loop, fullgraph=True, dynamic=False, backend=compile_backend) if compiled else None
        )
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], torch.Tensor]] = {}

    def _loop(
        self,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        mask: torch.Tensor,
        positions: torch.Tensor,
        state: torch.Tensor | None,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """The Euler loop of `blocks.flow.euler_integrate` over `Pi0Model.velocity`, unrolled (static t, dt)."""
        cache = KVCache(keys, values, mask, positions)
        x = noise
        dt = -1.0 / self.steps
        for k in range(self.steps):
            t = torch.full((x.shape[0],), 1.0 - k / self.steps, device=x.device)
            x = x + dt * self.model.velocity(cache, state, x, t)
        return x

    def __call__(self, cache: KVCache, state: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            args = (cache.keys, cache.values, cache.suffix_mask, cache.suffix_positions, state, noise)
            if self.mode == "eager":
                return self._loop(*args)
            if self.mode == "compile":
                return self._compiled(*args)
            return self._replay(*args)

    # --- CUDA graph ---------------------------------------------------------------------------

    def _replay(self, keys, values, mask, positions, state, noise) -> torch.Tensor:
        flat = {"mask": mask, "positions": positions, "noise": noise, **({"state": state} if state is not None else {})}
        flat.update({f"k{i}": k for i, k in enumerate(keys)})
        flat.update({f"v{i}": v for i, v in enumerate(values)})
        shape_key = tuple((name, tuple(t.shape), t.dtype) for name, t in flat.items())
        if shape_key not in self._graphs:
            self._graphs[shape_key] = self._capture(flat, len(keys))
        graph, static, out = self._graphs[shape_key]
        for name, tensor in flat.items():  # the static KV cache: one copy per observation
            static[name].copy_(tensor, non_blocking=True)
        graph.replay()
        return out.clone()

    def _capture(self, flat: dict[str, torch.Tensor], depth: int):
        static = {name: t.clone() for name, t in flat.items()}

        def run() -> torch.Tensor:
            return self._loop(
                [static[f"k{i}"] for i in range(depth)],
                [static[f"v{i}"] for i in range(depth)],
                static["mask"],
                static["positions"],
                static.get("state"),
                static["noise"],
            )

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph (lazy init, kernel selection)
            for _ in range(2):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = run()
        return graph, static, out


class DeviceImages:
    """Camera frames -> (C, 3, S, S) pixels in [-1, 1] on `device` and valid (C,), scaled there from uint8."""

    def __init__(self, processor: Pi0Processor, device: torch.device):
        self.processor = processor
        self.device = torch.device(device)
        cfg = processor.cfg
        self.size = cfg.vision.image_size
        self.slots = cfg.image_slots
        self.resize = processor.profile.resize
        pin = self.device.type == "cuda"
        self._staging = torch.zeros((len(self.slots), self.size, self.size, 3), dtype=torch.uint8, pin_memory=pin)

    def __call__(self, images: dict[str, np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        slot_camera = self.processor.slot_camera
        valid = np.array([slot_camera.get(s) is not None for s in self.slots])
        if self.resize == "torch_bilinear":
            pixels = [self._torch_bilinear(images[slot_camera[s]]) if ok else None for s, ok in zip(self.slots, valid)]
            blank = torch.full((3, self.size, self.size), -1.0, device=self.device)
            return torch.stack([p if p is not None else blank for p in pixels]), valid
        staging = self._staging.numpy()
        for i, slot in enumerate(self.slots):
            if valid[i]:
                staging[i] = resize_with_pad_pil(images[slot_camera[slot]], self.size)
        unit = self._staging.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() / 255.0
        pixels = unit * 2.0 - 1.0
        pixels[torch.from_numpy(~valid).to(self.device)] = -1.0
        return pixels, valid

    def _torch_bilinear(self, rgb: np.ndarray) -> torch.Tensor:
        """LeRobot's resize (torch bilinear without antialias on rgb / 255, clamped, padded) on the device."""
        frame = torch.from_numpy(np.array(rgb, copy=True))
        if self.device.type == "cuda":
            frame = frame.pin_memory()
        x = frame.to(self.device, non_blocking=True).float().div(255.0)
        if rgb.shape[:2] != (self.size, self.size):
            h, w = fitted_size(*rgb.shape[:2], self.size)
            x = F.interpolate(x.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False).clamp(
                0.0, 1.0
            )
            top, left = (self.size - h) // 2, (self.size - w) // 2
            x = F.pad(x, (left, self.size - w - left, top, self.size - h - top), value=0.0)[0].permute(1, 2, 0)
        return (x * 2.0 - 1.0).permute(2, 0, 1)
