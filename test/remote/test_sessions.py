"""Per-connection sessions of `vla-ros serve`: two robots with different observation streams on one server
with a window-2 model (the tiny converted Octo) each get the chunks a local backend fed only their own stream
gives, served one at a time and batched; a reset or a disconnect ends only its own session. The server runs in
this process (one model load), the clients are the robot side's links on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from vla_ros.backends.action_output import robot_body
from vla_ros.backends.base import load_backend
from vla_ros.config import load_robot_config
from vla_ros.remote.client import LinkError, LinkSettings, PolicyLink
from vla_ros.remote.schema import make_request
from vla_ros.serving.server import PolicyServer, ServeSettings

TEST_ROOT = Path(__file__).resolve().parents[1]
ROBOT = robot_body(load_robot_config("sim"))


def _octo_fixtures():
    """test/backends/octo/conftest.py's helpers (a conftest is not importable by package name)."""
    spec = importlib.util.spec_from_file_location("vla_ros_test_octo_helpers", TEST_ROOT / "backends/octo/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def window2_octo(tmp_path_factory) -> Path:
    """The tiny converted Octo (window 2, 20 diffusion steps, Bridge EE deltas), its settings in octo.yaml."""
    import json

    from vla_ros.backends.octo.convert import convert_params, write_converted

    fixtures = _octo_fixtures()
    tiny = fixtures.FIXTURES / "tiny"
    root = tmp_path_factory.mktemp("octo_sessions")
    raw = json.loads((tiny / "config.json").read_text())
    with np.load(tiny / "reference.npz") as z:
        params = {k.removeprefix("params/"): z[k] for k in z.files if k.startswith("params/")}
    cfg, weights = convert_params(raw, params)
    stats = json.loads((tiny / "dataset_statistics.json").read_text())
    stats["bridge_dataset"]["action"].update(mean=[0.0] * 7, std=[0.002] * 7)  # reachable EE steps
    (root / "stats.json").write_text(json.dumps(stats))
    folder = write_converted(root / "octo", cfg, weights, root / "stats.json")
    t5 = fixtures.make_tiny_t5(root / "t5", cfg.language_dim)
    (folder / "octo.yaml").write_text(f"t5_folder: {t5}\ndataset_key: bridge_dataset\n")
    return folder


def observation(seed: int):
    """One robot's observation (random frames, a reachable pose of the sim arm); stamp 0 as the server's."""
    from vla_ros.core.types import Observation

    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for c in ("front", "wrist")}
    q = ROBOT_HOME + rng.uniform(-0.05, 0.05, len(ROBOT_HOME))
    return Observation(0.0, images, ROBOT.joint_names, q, "pick up the red cube")


ROBOT_HOME = np.asarray(load_robot_config("sim").home, dtype=float)


class InProcessServer:
    """A PolicyServer on 127.0.0.1 (any free port) in its own event loop thread."""

    def __init__(self, server: PolicyServer):
        self.server, self.loop = server, asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=lambda: self.loop.run_until_complete(self._run(ready)), name="serve", daemon=True
        )
        self.thread.start()
        assert ready.wait(30), "server did not start"
        self.url = f"ws://127.0.0.1:{server.port}"

    async def _run(self, ready: threading.Event) -> None:
        self.task = asyncio.current_task()
        try:
            await self.server.run(on_ready=lambda _url: ready.set())
        except asyncio.CancelledError:
            pass

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(window2_octo):
    backend = load_backend("octo", window2_octo, {}, seed=0, robot=ROBOT)
    server = InProcessServer(PolicyServer(backend, "octo", ServeSettings(port=0, max_batch=2, batch_wait_s=0.3)))
    yield server
    server.stop()


def local(folder: Path):
    """A freshly loaded backend (seed 0, as the server's): what one robot alone on its own machine would run."""
    return load_backend("octo", folder, {}, seed=0, robot=ROBOT)


def infer_together(links, requests) -> list[dict]:
    """One request per link sent at the same moment (they meet in one batch); the answers in link order."""
    answers: list = [None] * len(links)
    barrier = threading.Barrier(len(links))

    def send(k: int) -> None:
        barrier.wait(timeout=10)
        answers[k] = links[k].infer(requests[k])[0]

    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(links))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers)
    return answers


def test_each_connection_has_its_own_history_noise_and_episode(served, window2_octo):
    links = {name: PolicyLink(LinkSettings(served.url, timeout_s=30.0)) for name in ("a", "b")}
    metadata = links["a"].connect()
    links["b"].connect()
    assert metadata["sessions"] == "per_connection" and metadata["noise_full_shape"] == [21, 4, 7]
    streams = {"a": [observation(100 + i) for i in range(6)], "b": [observation(200 + i) for i in range(6)]}
    alone = {name: local(window2_octo) for name in links}  # each fed only its own robot's stream

    def expect(name: str, i: int, answer: dict) -> None:
        want = alone[name].predict(streams[name][i]).positions
        np.testing.assert_allclose(answer["actions"], want, atol=1e-5, err_msg=f"robot {name}, step {i}")

    for i in range(2):  # one at a time: each request alone in its batch, history windows interleaved
        for name in ("a", "b"):
            answer = links[name].infer(make_request(streams[name][i]))[0]
            assert answer["server_timing"]["batch_size"] == 1
            expect(name, i, answer)
    for i in range(2, 4):  # together: one forward pass for both, each within its own window and generator
        answers = infer_together([links["a"], links["b"]], [make_request(streams[n][i]) for n in ("a", "b")])
        assert [a["server_timing"]["batch_size"] for a in answers] == [2, 2]
        expect("a", i, answers[0])
        expect("b", i, answers[1])

    shared = local(window2_octo)  # what one shared history would have given robot a: it must differ
    for i in range(3):
        shared.predict(streams["b"][i])
        shared_a = shared.predict(streams["a"][i]).positions
    assert np.abs(shared_a - alone["a"].predict(observation(100 + 2)).positions).max() > 1e-4

    # robot a resets: its episode starts afresh (window and generator); robot b's goes on
    fresh = local(window2_octo)
    answer = links["a"].infer(make_request(streams["a"][4], reset=True))[0]
    np.testing.assert_allclose(answer["actions"], fresh.predict(streams["a"][4]).positions, atol=1e-5)
    expect("b", 4, links["b"].infer(make_request(streams["b"][4]))[0])
    # robot b disconnects and comes back: a new session; robot a's episode goes on
    links["b"].close()
    back = PolicyLink(LinkSettings(served.url, timeout_s=30.0))
    back.connect()
    fresh_b = local(window2_octo)
    answer = back.infer(make_request(streams["b"][5]))[0]
    np.testing.assert_allclose(answer["actions"], fresh_b.predict(streams["b"][5]).positions, atol=1e-5)
    answer = links["a"].infer(make_request(streams["a"][5]))[0]
    np.testing.assert_allclose(answer["actions"], fresh.predict(streams["a"][5]).positions, atol=1e-5)
    assert len(served.server.sessions) == 2


def test_a_request_with_the_full_noise_shape_is_deterministic(served, window2_octo):
    link = PolicyLink(LinkSettings(served.url, timeout_s=30.0))
    shape = link.connect()["noise_full_shape"]
    noise = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    reference = local(window2_octo)
    reference.generator.manual_seed(1234)  # another generator: the given noise is every draw
    want = reference.predict(observation(7), noise=noise).positions
    got = link.infer(make_request(observation(7), noise=noise))[0]["actions"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_an_oversized_message_gets_its_reason_before_the_close(window2_octo):
    backend = local(window2_octo)
    server = InProcessServer(PolicyServer(backend, "octo", ServeSettings(port=0, max_message_bytes=2**20)))
    try:
        link = PolicyLink(LinkSettings(server.url, timeout_s=10.0))
        link.connect()
        big = make_request(observation(1))
        big["observation/images/front"] = np.zeros((1024, 1024, 3), np.uint8)  # 3 MiB over a 1 MiB limit
        with pytest.raises(LinkError) as caught:
            link.infer(big)
        text = str(caught.value)
        assert "refused the request: bad request: message too big" in text and "--max-message-mb" in text, text
        assert link.last_error == text and link.state != "connected"
        assert link.infer(make_request(observation(2)))[0]["actions"].shape == (4, 7)  # a new connection is served
    finally:
        server.stop()
