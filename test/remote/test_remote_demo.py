"""The demo through the bring-up with `backend: openpi_remote` against `vla-ros serve` in another process."""

import json

from vla_ros.demo import run_demo
from vla_ros.paths import resolve_package_path
from vla_ros.serving.local_server import ServedPolicy, write_remote_settings


def test_demo_episode_succeeds_with_the_policy_served_remotely(ros_env, tmp_path):
    with ServedPolicy("octo", resolve_package_path("models/demo"), tmp_path / "serve.log") as served:
        settings = write_remote_settings(tmp_path / "remote_policy", served.port)
        summary = run_demo(
            episodes=2,
            first_seed=2000,
            run_dir=tmp_path / "run",
            model_path=str(settings),
            backend="openpi_remote",
            domain_id=int(ros_env["ROS_DOMAIN_ID"]),
            log=lambda *_: None,
        )
        log = served.log()
    assert summary["episodes"] == 2
    assert summary["success_rate"] >= 0.5, json.dumps(summary["episodes_detail"])  # as the local demo's test
    assert summary["inference_ms"]["p50"] > 0
    policy_log = (tmp_path / "run" / "logs" / "vla_policy.log").read_text()
    assert "backend 'openpi_remote' loaded" in policy_log
    assert "connection open" in log  # the chunks came over the websocket
