"""Backends are plug-ins: a package outside vla_ros (test/plugins/echo) registers one by entry point, and the
policy node loads it by name over DDS with no edit to vla_ros."""

from pathlib import Path

import numpy as np
import pytest
from conftest import log_text, wait_until

PLUGINS = Path(__file__).resolve().parents[1] / "plugins" / "echo"


def test_the_bundled_backends_are_registered_by_entry_point_and_a_plugin_joins_them(monkeypatch):
    from vla_ros.registry import RegistryError, available_backends, settings_class

    assert {"octo", "openvla", "pi0", "openpi_remote"} <= set(available_backends())
    assert "echo" not in available_backends()
    with pytest.raises(RegistryError, match=r"unknown backend 'echo' \(available: \["):
        settings_class("echo")
    monkeypatch.syspath_prepend(str(PLUGINS))
    assert "echo" in available_backends() and settings_class("echo").__name__ == "EchoSettings"


def test_a_plugin_backend_is_loaded_by_the_policy_node_over_dds(nodes, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{PLUGINS}:{__import__('os').environ.get('PYTHONPATH', '')}")
    bringup, peer, _ = nodes(
        backend="echo", model_path="", policy_overrides={"instruction": "go", "backend_settings": "{target: 0.3}"}
    )
    peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
    peer.start_robot(rate_hz=50)
    assert wait_until(lambda: len(peer.chunks) >= 2, 60), log_text(bringup.log_dir.parent, "vla_policy")
    last = peer.chunks[-1].points[-1].positions
    assert last[0] == pytest.approx(0.3) and list(peer.chunks[-1].joint_names) == list(peer.joint_names)
    assert "effective backend settings: joints=" in log_text(bringup.log_dir.parent, "vla_policy")
    assert bringup.dead() == {}
