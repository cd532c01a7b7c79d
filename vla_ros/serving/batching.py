"""Requests from several clients collected for a bounded wait and run as one batch.

Each request carries its client's episode state (`Backend.new_episode_state`: history window, noise
generator). A backend that has `predict_batch(observations, noises, states) -> list[ActionChunk]` gets
one call per batch (one forward pass, each observation within its own state); any other backend gets
its `predict` called once per request, in order, within the request's state (`Backend.episode_state`).
Inference runs on one worker thread (models are not re-entrant, and the state swap needs one thread);
the event loop only queues.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend
from vla_ros.core.types import ActionChunk, Observation


def batching_mode(backend: Backend) -> str:
    """'batched' when the backend runs several observations in one pass, else 'sequential'."""
    return "batched" if callable(getattr(backend, "predict_batch", None)) else "sequential"


def predict_many(
    backend: Backend,
    observations: list[Observation],
    noises: list[np.ndarray | None],
    delay_s: float = 0.0,
    states: list[dict[str, Any]] | None = None,
) -> list[ActionChunk | Exception]:
    """One chunk (or the exception raised) per observation, each within its client's episode state `states[i]`
    (None: the backend's own); `delay_s`: artificial latency per call (seconds)."""
    if delay_s > 0:
        time.sleep(delay_s)
    if len(observations) > 1 and batching_mode(backend) == "batched":
        try:
            if states is None:
                return list(backend.predict_batch(observations, noises))
            return list(backend.predict_batch(observations, noises, states))
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the failure
            return [exc] * len(observations)
    out: list[ActionChunk | Exception] = []
    for i, (obs, noise) in enumerate(zip(observations, noises)):
        try:
            if states is None:
                out.append(backend.predict(obs, noise))
            else:
                with backend.episode_state(states[i]):
                    out.append(backend.predict(obs, noise))
        except Exception as exc:  # noqa: BLE001 - one bad request must not fail the others
            out.append(exc)
    return out


@dataclass
class _Pending:
    observation: Observation
    noise: np.ndarray | None
    state: dict[str, Any] | None  # the client's episode state
    future: asyncio.Future
    queued_at_s: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchResult:
    """One request's chunk (or exception) and timing, seconds."""

    chunk: ActionChunk | Exception
    queue_s: float
    infer_s: float
    batch_size: int


class Batcher:
    """Collects requests for at most `wait_s` after the first (or until `max_batch`, or one per open
    connection: a lone client never waits), then infers."""

    def __init__(self, backend: Backend, max_batch: int = 1, wait_s: float = 0.002, delay_s: float = 0.0):
        if max_batch < 1 or wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and wait_s >= 0, got {max_batch} and {wait_s}")
        self.backend = backend
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.delay_s = delay_s  # artificial latency per forward pass (a slow or far GPU)
        self.clients = 0  # open connections: no point waiting for more requests than there are clients
        self._queue: asyncio.Queue[_Pending] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(
        self, observation: Observation, noise: np.ndarray | None, state: dict[str, Any] | None = None
    ) -> BatchResult:
        """The chunk for `observation`, predicted within the client's episode `state` (None: the backend's own)."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(observation, noise, state, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.wait_s
        while len(batch) < min(self.max_batch, self.clients):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            batch = [p for p in batch if not p.future.cancelled()]  # client gone while queued
            if not batch:
                continue
            started = time.perf_counter()
            results = await loop.run_in_executor(
                self._pool,
                predict_many,
                self.backend,
                [p.observation for p in batch],
                [p.noise for p in batch],
                self.delay_s,
                None if any(p.state is None for p in batch) else [p.state for p in batch],
            )
            infer_s = time.perf_counter() - started
            for pending, chunk in zip(batch, results):
                if not pending.future.done():
                    pending.future.set_result(BatchResult(chunk, started - pending.queued_at_s, infer_s, len(batch)))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
