"""`vla-ros serve` as a real subprocess on 127.0.0.1, and observations for the sim arm's tiny models."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vla_ros.core.types import Observation
from vla_ros.sim.tabletop import JOINT_NAMES

ROOT = Path(__file__).resolve().parents[2]


class ServeProcess:
    """One `vla-ros serve` process; `start` waits (bounded) for its 'serving' line."""

    def __init__(self, backend: str, model_path: Path, log_path: Path, *extra: str):
        self.args = [sys.executable, "-m", "vla_ros.cli", "serve", "--backend", backend, "--model-path", str(model_path), "--num-threads", "1", *extra]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.info: dict = {}

    def start(self, port: int = 0, timeout_s: float = 90.0) -> ServeProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*self.args, "--port", str(port)], stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if selector.select(timeout=0.2):
                self.info = json.loads(self.proc.stdout.readline())
                self.port = self.info["port"]
                return self
        self.stop()
        raise RuntimeError(f"vla-ros serve did not start within {timeout_s} s:\n{self.log_path.read_text()}")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(backend, model_path, *extra_args) -> a started ServeProcess (stopped after the test)."""
    started: list[ServeProcess] = []

    def start(backend: str, model_path: Path, *extra: str) -> ServeProcess:
        server = ServeProcess(backend, model_path, tmp_path / f"serve{len(started)}.log", *extra).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop(kill=True)


def sim_observation(seed: int, stamp_s: float = 0.0, size: int = 32, instruction: str = "reach the red cube") -> Observation:
    """Random camera frames and joint positions for the sim arm (front + wrist)."""
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return Observation(stamp_s, images, JOINT_NAMES, rng.uniform(-0.5, 0.5, len(JOINT_NAMES)), instruction)
