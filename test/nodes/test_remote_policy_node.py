"""policy_node with `backend: openpi_remote` over DDS, the policy in a `vla-ros serve` process: the
server killed mid-run makes the executor hold; restarted, chunks resume from fresh observations only."""

import time

import numpy as np
from conftest import log_text, wait_until

from vla_ros.serving.local_server import ServedPolicy, write_remote_settings


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_server_killed_mid_run_holds_then_resumes_from_fresh_observations(nodes, tiny_checkpoint, tmp_path):
    server = ServedPolicy("octo", tiny_checkpoint, tmp_path / "serve.log", "--num-threads", "1").start()
    try:
        settings = write_remote_settings(
            tmp_path / "remote_policy", server.port, timeout_s=1.0, reconnect_backoff_s=0.2
        )
        bringup, peer, _ = nodes(
            policy_overrides={"inference_period_s": 0.1},
            executor_overrides={"plan_timeout_s": 0.3},
            backend="openpi_remote",
            model_path=settings,
        )

        def executor_state():
            states = [s.message for d in peer.diagnostics[-3:] for s in d.status if "executor" in s.name]
            return states[-1] if states else None

        def link():
            """The policy's latest /diagnostics: link state, server and network time."""
            found = [
                {kv.key: kv.value for kv in s.values} for d in peer.diagnostics for s in d.status if "policy" in s.name
            ]
            return found[-1] if found else {}

        peer.start_robot()
        assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
        assert wait_until(lambda: len(peer.chunks) >= 3 and executor_state() == "tracking", 60), log_text(
            tmp_path, "vla_policy"
        )
        assert wait_until(
            lambda: link().get("link_state") == "connected" and link().get("network_ms", "nan") != "nan", 5
        ), link()
        assert float(link()["server_inference_ms"]) > 0
        port = server.port
        server.stop(kill=True)
        killed_at = peer.node.get_clock().now().nanoseconds * 1e-9
        assert wait_until(lambda: executor_state() == "holding", 8), "executor did not hold after the server died"
        n_held = len(peer.chunks)
        held = peer.commands[-1][1]
        time.sleep(0.5)
        np.testing.assert_allclose(peer.commands[-1][1], held, atol=1e-9)
        assert wait_until(lambda: "openpi_remote:" in log_text(tmp_path, "vla_policy"), 5)
        assert wait_until(lambda: link().get("link_state") in ("backoff", "disconnected"), 5), link()

        server.start(port=port)
        assert wait_until(lambda: len(peer.chunks) > n_held + 2 and executor_state() == "tracking", 60), log_text(
            tmp_path, "vla_policy"
        )
        late = [m for m in peer.chunks[n_held:]]
        assert all(stamp_s(m) > killed_at for m in late), "a chunk from an observation before the outage was published"
        assert bringup.dead() == {}
    finally:
        server.stop(kill=True)
