"""The package's Fast DDS profiles: what each one restricts, that Fast DDS itself parses them, that the
`dds_profile` launch argument maps to them, and a bring-up on the default profile working on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Peer, wait_until

from vla_ros.bringup import Bringup
from vla_ros.launch_description import (
    DDS_PROFILE_VARIABLE,
    DDS_PROFILES,
    LAUNCH_ARGUMENTS,
    dds_environment,
    node_specs,
)
from vla_ros.paths import resolve_package_path

NS = {"dds": "http://www.eprosima.com"}
PROBE = """
import rclpy
rclpy.init(args=[])
node = rclpy.create_node("dds_profile_probe")
node.destroy_node()
rclpy.shutdown()
print("participant created", flush=True)
"""


def transports(path: Path) -> dict[str, ET.Element]:
    """The transports the default participant profile of `path` uses, by id (builtin ones must be off)."""
    root = ET.parse(path).getroot()
    participant = root.find(".//dds:participant[@is_default_profile='true']", NS)
    assert participant is not None, f"{path}: no default participant profile"
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=NS) == "false"
    used = [e.text for e in participant.findall("dds:rtps/dds:userTransports/dds:transport_id", NS)]
    descriptors = {
        d.findtext("dds:transport_id", namespaces=NS): d for d in root.iter(f"{{{NS['dds']}}}transport_descriptor")
    }
    assert set(used) <= set(descriptors), f"{path}: transports {used} not all described ({list(descriptors)})"
    return {t: descriptors[t] for t in used}


def allowed_interfaces(descriptor: ET.Element) -> list[str]:
    """The interface allowlist of a transport descriptor (empty: every interface)."""
    return [e.get("name") for e in descriptor.findall("dds:interfaces/dds:allowlist/dds:interface", NS)] + [
        e.text for e in descriptor.findall("dds:interfaceWhiteList/dds:address", NS)
    ]


def by_type(path: Path) -> dict[str, ET.Element]:
    return {d.findtext("dds:type", namespaces=NS): d for d in transports(path).values()}


def test_the_default_profile_is_shared_memory_plus_udp_on_every_interface():
    path = resolve_package_path(DDS_PROFILES["shm"])
    kinds = by_type(path)
    assert set(kinds) == {"SHM", "UDPv4"}
    assert allowed_interfaces(kinds["UDPv4"]) == []  # no allowlist: every interface the ROS setup allows
    assert kinds["UDPv4"].find("dds:interfaces", NS) is None  # nor a blocklist
    assert int(kinds["SHM"].findtext("dds:segment_size", namespaces=NS)) == 16 * 1024 * 1024
    assert LAUNCH_ARGUMENTS["dds_profile"][0] == "shm" == next(iter(DDS_PROFILES))


def test_the_loopback_profile_restricts_udp_to_127_0_0_1():
    kinds = by_type(resolve_package_path(DDS_PROFILES["shm_loopback"]))
    assert set(kinds) == {"SHM", "UDPv4"}
    assert allowed_interfaces(kinds["UDPv4"]) == ["127.0.0.1"]


@pytest.mark.parametrize("name", sorted(DDS_PROFILES))
def test_fast_dds_parses_the_profile(name, ros_env, tmp_path):
    """rmw_fastrtps loads the file when a participant is created; Fast DDS's parser reports errors on stderr."""
    env = {**os.environ, **ros_env, DDS_PROFILE_VARIABLE: str(resolve_package_path(DDS_PROFILES[name]))}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "participant created" in out.stdout, out.stderr
    assert "XMLPARSER" not in out.stderr and "Error" not in out.stderr, out.stderr
    broken = tmp_path / "broken.xml"  # the same check sees a profile Fast DDS cannot read
    broken.write_text(
        resolve_package_path(DDS_PROFILES[name]).read_text().replace("<type>UDPv4</type>", "<type>UDP</type>")
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, DDS_PROFILE_VARIABLE: str(broken)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "XMLPARSER" in out.stderr


def test_the_launch_argument_maps_to_the_profiles(tmp_path):
    mine = {DDS_PROFILE_VARIABLE: "/mine.xml"}
    assert dds_environment("shm", environ={}) == {
        DDS_PROFILE_VARIABLE: str(resolve_package_path("config/fastdds_shm.xml"))
    }
    assert dds_environment("shm", environ=mine) == {}  # the user's own profile wins over the default
    loopback = {DDS_PROFILE_VARIABLE: str(resolve_package_path("config/fastdds_shm_loopback.xml"))}
    assert dds_environment("shm_loopback", environ={}) == loopback
    assert dds_environment(" SHM_LOOPBACK ", environ=mine) == loopback  # asked for by name: it wins
    assert dds_environment("none", environ={}) == dds_environment("", environ={}) == {}
    with pytest.raises(ValueError, match=r"dds_profile:='shm_lo': no Fast DDS profile at .*shm_lo.*'shm_loopback'"):
        dds_environment("shm_lo", environ={})


def test_a_bring_up_on_the_default_profile_works_on_loopback(ros_env, tiny_checkpoint, tmp_path):
    """The sim robot, policy and executor on `dds_profile:=shm` (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, as the
    tests and the demo run): camera frames reach the policy, its chunks the executor, the commands the sim and a
    peer without the profile."""
    env = {**ros_env, **dds_environment("shm", environ={})}
    specs = node_specs(
        "sim",
        model_path=str(tiny_checkpoint),
        use_sim=True,
        overrides={"vla_policy": {"instruction": "reach the red cube"}},
    )
    peer = None
    with Bringup(specs, log_dir=tmp_path / "logs", env=env) as bringup:
        try:
            peer = Peer(tuple(specs[0].parameters["joint_names"]))
            assert peer.wait_active("vla_chunk_executor", "vla_policy", timeout_s=90.0), f"not active: {bringup.dead()}"
            assert wait_until(lambda: len(peer.chunks) >= 2 and len(peer.commands) >= 20, 30.0), (
                f"chunks {len(peer.chunks)}, commands {len(peer.commands)}; dead: {bringup.dead()}"
            )
            assert bringup.dead() == {}
        finally:
            if peer is not None:
                peer.close()
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert "XMLPARSER" not in logs
