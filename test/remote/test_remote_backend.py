"""The `openpi_remote` backend and its link against `vla-ros serve` processes on loopback: equal
actions, stamps, and the faults (server killed and restarted, too slow, garbage, wrong schema,
oversized message, wrong or missing API key), each a clear error while the server serves others."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time

import numpy as np
import pytest
import websockets
from remote_helpers import sim_observation
from websockets.sync.client import connect

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.remote.client import LinkError, LinkSettings, PolicyLink
from vla_ros.remote.schema import make_request
from vla_ros.remote.wire import packb, unpackb


def remote_backend(tmp_path, port: int, **settings):
    """openpi_remote with settings given as node parameters (over the package's openpi_remote.yaml)."""
    return load_backend(
        "openpi_remote", None, {"host": "127.0.0.1", "port": port, "wait_for_server_s": 5.0, **settings}
    )


def raw_exchange(url: str, payload):
    """Send one raw frame after reading the metadata; return the answer (or the close exception)."""
    with connect(url, compression=None, proxy=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=10))
        try:
            ws.send(payload)
            return ws.recv(timeout=10)
        except websockets.ConnectionClosed as exc:
            return exc


@pytest.fixture
def octo_server(serve, tiny_checkpoint):
    return serve("octo", tiny_checkpoint)


def test_remote_chunk_equals_the_local_one_and_keeps_the_observation_stamp(octo_server, tiny_checkpoint, tmp_path):
    remote = remote_backend(tmp_path, octo_server.port)
    local = load_backend("octo", tiny_checkpoint, seed=0)
    assert remote.joint_names == local.joint_names and remote.camera_names == local.camera_names
    assert remote.dt_s == local.dt_s and remote.horizon == local.horizon
    for i in range(3):
        obs = sim_observation(seed=10 + i, stamp_s=100.0 + i)
        noise = np.random.default_rng(i).standard_normal((local.horizon, local.cfg.action_dim)).astype(np.float32)
        chunk = remote.predict(obs, noise=noise)
        assert chunk.t0_s == obs.stamp_s
        np.testing.assert_allclose(chunk.positions, local.predict(obs, noise=noise).positions, atol=1e-6)
        assert chunk.inference_s > 0
    diag = remote.diagnostics()
    assert (
        diag["link_state"] == "connected" and float(diag["server_inference_ms"]) > 0 and float(diag["network_ms"]) >= 0
    )
    assert float(diag["round_trip_ms"]) >= float(diag["server_inference_ms"])


def test_bad_requests_get_a_text_reason_and_the_server_keeps_serving(octo_server, tmp_path):
    good = remote_backend(tmp_path, octo_server.port)
    good.predict(sim_observation(1))
    garbage = raw_exchange(octo_server.url, b"\x00\xffgarbage\xc1")
    assert isinstance(garbage, str) and "not a valid msgpack" in garbage
    request = make_request(sim_observation(2))
    del request["observation/images/wrist"]
    schema = raw_exchange(octo_server.url, packb(request))
    assert isinstance(schema, str) and "missing 'observation/images/wrist'" in schema
    request = make_request(sim_observation(2))
    request["observation/state"] = np.zeros(3)
    assert "'observation/state' must be (7,)" in raw_exchange(octo_server.url, packb(request))
    request["observation/state"] = np.zeros(7, dtype=object)
    with pytest.raises(Exception, match="object"):  # our own encoder refuses it before sending
        packb(request)
    text = raw_exchange(octo_server.url, "a text frame")
    assert isinstance(text, str) and "expected a binary msgpack frame" in text
    oversized = raw_exchange(octo_server.url, bytes(17 * 2**20))  # the reason, then the close (1009)
    assert isinstance(oversized, str) and "bad request: message too big" in oversized, oversized
    good.predict(sim_observation(3))  # the first client was served throughout
    assert good.link.connections == 1 and octo_server.proc.poll() is None


def test_oversized_message_from_the_server_is_refused_by_the_client(octo_server):
    link = PolicyLink(LinkSettings(octo_server.url, max_message_bytes=100))  # smaller than the metadata
    with pytest.raises(LinkError, match="sent no valid metadata.*1009"):
        link.connect()
    assert link.state == "backoff"
    assert PolicyLink(LinkSettings(octo_server.url)).connect()["backend"] == "octo"


def test_server_killed_and_restarted_link_reconnects_with_fresh_observations_only(octo_server, tmp_path):
    remote = remote_backend(tmp_path, octo_server.port, reconnect_backoff_s=0.2, max_backoff_s=0.4, timeout_s=5.0)
    remote.predict(sim_observation(1, stamp_s=1.0))
    port = octo_server.port
    octo_server.stop(kill=True)
    with pytest.raises(BackendError, match="lost|failed|cannot connect"):
        remote.predict(sim_observation(2, stamp_s=2.0))
    assert remote.diagnostics()["link_state"] in ("backoff", "disconnected")
    with pytest.raises(BackendError, match="next connection attempt|cannot connect"):
        remote.predict(sim_observation(3, stamp_s=3.0))
    octo_server.start(port=port)
    deadline = time.monotonic() + 20
    chunk, stamp = None, 4.0
    while chunk is None and time.monotonic() < deadline:
        try:
            chunk = remote.predict(sim_observation(4, stamp_s=stamp))
        except BackendError:
            stamp += 1.0
            time.sleep(0.1)
    assert chunk is not None, remote.diagnostics()
    assert chunk.t0_s == stamp, "a chunk for an older observation came back after the reconnection"
    assert remote.link.connections == 2 and int(remote.diagnostics()["link_errors"]) >= 1


def test_server_slower_than_timeout_gives_an_error_and_never_a_late_answer(serve, tiny_checkpoint, tmp_path):
    slow = serve("octo", tiny_checkpoint, "--inference-delay-s", "0.6")
    local = load_backend("octo", tiny_checkpoint, seed=0)
    remote = remote_backend(tmp_path, slow.port, timeout_s=0.2)
    noise = np.zeros((local.horizon, local.cfg.action_dim), np.float32)
    with pytest.raises(BackendError, match="did not answer within timeout_s=0.2"):
        remote.predict(sim_observation(1, stamp_s=1.0), noise=noise)
    assert remote.diagnostics()["link_state"] == "disconnected"
    remote.link.settings = dataclasses.replace(remote.link.settings, timeout_s=5.0)
    fresh = sim_observation(2, stamp_s=2.0)
    chunk = remote.predict(fresh, noise=noise)
    assert chunk.t0_s == 2.0
    late = local.predict(sim_observation(1, stamp_s=1.0), noise=noise).positions  # what the late answer held
    # the reconnection is a new session: a freshly loaded backend's chunk for the fresh observation
    expected = load_backend("octo", tiny_checkpoint, seed=0).predict(fresh, noise=noise).positions
    np.testing.assert_allclose(chunk.positions, expected, atol=1e-6)
    assert not np.allclose(chunk.positions, late, atol=1e-3)


def test_api_key_is_required_before_any_inference(serve, tiny_checkpoint, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-key\n")
    server = serve("octo", tiny_checkpoint, "--api-key-file", str(key_file))
    wrong = tmp_path / "wrong"
    wrong.write_text("guess")
    with pytest.raises(BackendError, match="HTTP 401 wrong API key"):
        remote_backend(tmp_path, server.port, api_key_file=str(wrong))
    with pytest.raises(BackendError, match="HTTP 401 missing API key"):
        remote_backend(tmp_path, server.port)
    remote = remote_backend(tmp_path, server.port, api_key_file=str(key_file))
    assert remote.predict(sim_observation(1)).positions.shape == (remote.horizon, 7)
    log = server.log()
    assert log.count("refused") == 2 and "s3cret" not in log


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_tls_link_verifies_the_servers_certificate(serve, tiny_checkpoint, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = serve("octo", tiny_checkpoint, "--certfile", str(cert), "--keyfile", str(key))
    assert server.info["serving"].startswith("wss://")
    remote = remote_backend(tmp_path, server.port, tls=True, ca_file=str(cert))
    assert remote.settings.url.startswith("wss://") and remote.predict(sim_observation(1)).positions.shape[1] == 7
    with pytest.raises(BackendError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs do not know it
        remote_backend(tmp_path, server.port, tls=True, wait_for_server_s=0.0)
    with pytest.raises(BackendError, match="cannot connect|no valid metadata"):  # plain ws:// to a TLS port
        remote_backend(tmp_path, server.port, wait_for_server_s=0.0)


def test_remote_actions_go_through_the_shared_action_space_step(octo_server, tmp_path):
    """A server's actions are read in the declared convention by the same output step as local
    backends; a convention the server contradicts in its metadata is refused at load."""
    remote = remote_backend(tmp_path, octo_server.port)
    assert remote.output.space.name != "droid_joint_velocity"
    assert remote.output.action_dim == len(remote.joint_names)  # absolute joint positions
    with pytest.raises(BackendError, match="the server's actions are 'joint_position', settings.action_space is"):
        remote_backend(tmp_path, octo_server.port, action_space={"preset": "droid_joint_velocity"})
    with pytest.raises(BackendError, match="action_space.preset: must be one of .*got 'eef_delta'"):
        remote_backend(tmp_path, octo_server.port, action_space={"preset": "eef_delta"})
    with pytest.raises(BackendError, match="action_space: input should be a valid dictionary"):
        remote_backend(tmp_path, octo_server.port, action_space="droid_joint_velocity")
