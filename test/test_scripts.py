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
