"""Every script under scripts/ that users run has a test that runs it (on the bundled or tiny models)."""

import sys

from vla_ros.paths import PACKAGE_ROOT

sys.path.insert(0, str(PACKAGE_ROOT / "scripts"))
import guided_tuning  # noqa: E402

sys.path.pop(0)


def test_guided_tuning_runs_an_episode_per_config_and_prints_its_row(capsys):
    assert guided_tuning.main(["--delays", "0.1", "--configs", "guided:5:chunk", "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("guided:5:chunk delay 100 ms: success ") and "switches at a running plan" in out


def test_the_executor_tick_benchmark_records_an_expert_episode_through_the_policy_core_and_replays_it(capsys):
    from vla_ros.benchmarks import executor_tick

    assert executor_tick.main(["--episodes", "1", "--repeats", "1", "--rate", "100"]) == 0
    out = capsys.readouterr().out
    assert "policy expert, 100 Hz" in out and "success 1.00" in out and "CPU per tick p50" in out


def test_the_rediscovery_check_restarts_a_process_and_times_each_direction(ros_env, tmp_path, capsys):
    """docs/reliability.md's DDS check, killed and restarted twice (no freeze: a freeze makes one restart in some
    tens deaf, which is what the check is for, not what a test can wait on): each new process hears and is heard
    in every direction (heartbeat out, service in and out, two camera topics and a latched topic in)."""
    import json

    sys.path.insert(0, str(PACKAGE_ROOT / "scripts"))
    import respawn_rediscovery

    sys.path.pop(0)
    argv = ["--cycles", "2", "--mode", "kill", "--domain-id", ros_env["ROS_DOMAIN_ID"], "--log-dir", str(tmp_path)]
    assert respawn_rediscovery.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    cycles = [json.loads(line) for line in lines[:-1]]
    assert [c["missing"] for c in cycles] == [[], []] and len({c["pid"] for c in cycles}) == 2
    assert set(cycles[1]["first_s"]) == set(respawn_rediscovery.DIRECTIONS)
    assert lines[-1] == "2 cycles (kill, default): 0 deaf"
