"""`vla-ros serve` as a real subprocess on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from vla_ros.serving.local_server import ServedPolicy


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(backend, model_path, *extra_args) -> a started ServedPolicy (killed after the test)."""
    started: list[ServedPolicy] = []

    def start(backend: str, model_path: Path, *extra: str) -> ServedPolicy:
        server = ServedPolicy(
            backend, model_path, tmp_path / f"serve{len(started)}.log", "--num-threads", "1", *extra
        ).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop(kill=True)
