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
