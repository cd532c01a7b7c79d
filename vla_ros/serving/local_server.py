"""`vla-ros serve` as a child process on this machine (the remote demo, tests, benchmarks)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


class ServedPolicy:
    """One `vla-ros serve` process; `start` waits (bounded) for its 'serving' line; a context manager."""

    def __init__(
        self, backend: str, model_path: str | Path, log_path: str | Path, *extra_args: str, host: str = "127.0.0.1"
    ):
        self.args = [
            sys.executable,
            "-m",
            "vla_ros.cli",
            "serve",
            "--backend",
            backend,
            "--model-path",
            str(model_path),
            "--host",
            host,
            *extra_args,
        ]
        self.host = host
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.info: dict[str, Any] = {}

    def start(self, port: int = 0, timeout_s: float = 120.0) -> ServedPolicy:
        """Start on `port` (0: any free port) and wait until it listens (RuntimeError with its log if not)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [*self.args, "--port", str(port)], stdout=subprocess.PIPE, stderr=log, env=dict(os.environ), text=True
            )
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if selector.select(timeout=0.2):
                self.info = json.loads(self.proc.stdout.readline())
                self.port = int(self.info["port"])
                return self
        self.stop(kill=True)
        raise RuntimeError(
            f"vla-ros serve did not start within {timeout_s} s; log {self.log_path}:\n{self.log()[-2000:]}"
        )

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.is_file() else ""

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> ServedPolicy:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def write_remote_settings(folder: str | Path, port: int, host: str = "127.0.0.1", **settings: Any) -> Path:
    """A settings folder for `backend: openpi_remote` (its `model_path`): `openpi_remote.yaml`
    pointing at host:port (extra keys: RemoteSettings fields). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"host": host, "port": port, "keys": "vla_ros", **settings}, sort_keys=False)
    (folder / "openpi_remote.yaml").write_text(text)
    return folder
