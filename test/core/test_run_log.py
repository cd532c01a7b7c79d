"""The executor's run record: commands with the mode that made them, saved and read back for the
smoothness report (jerk per mode)."""

import numpy as np
import pytest

from vla_ros.config import load_robot_config
from vla_ros.core.run_log import RunLog
from vla_ros.core.types import ActionChunk
from vla_ros.executor_setup import executor_from_parameters
from vla_ros.launch_description import executor_parameters
from vla_ros.report import load_run, smoothness

HOME = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])


def test_a_recorded_run_reports_jerk_per_mode_and_the_deactivation_stop_stays_gentle(tmp_path):
    core = executor_from_parameters(executor_parameters(load_robot_config("sim")))
    core.run_log = RunLog(core.limiter.limits)
    dt = 0.01
    core.on_joint_state(0.0, HOME)
    core.activate()
    targets = HOME + np.outer(np.arange(1, 9), [0.06, -0.04, 0.05, 0.0, 0.03, 0.0, 0.0])
    core.on_chunk(ActionChunk(0.0, 0.1, core.joint_names, targets), 0.0)
    now = 0.0
    for _ in range(50):  # half of the chunk: moving when deactivated
        now += dt
        core.on_joint_state(now, core.limiter.position)
        core.tick(now)
    core.deactivate()
    for _ in range(300):
        now += dt
        core.on_joint_state(now, core.limiter.position)
        if core.tick(now).state == "inactive":
            break
    run = load_run(core.run_log.save(tmp_path / "run.npz"))
    assert set(run["command_mode"]) >= {"tracking/nominal", "stopping"}
    report = smoothness(run)
    by_mode = report["max_jerk_by_mode"]
    assert report["max_jerk"] == pytest.approx(max(by_mode.values()), abs=0.05)
    assert by_mode["stopping"] > 0
    # per joint: the stop used at most its share of each joint's jerk limit
    jerk = np.abs(np.diff(run["command_acc"], axis=0)) / np.diff(run["command_t"])[:, None]
    stopping = jerk[run["command_mode"][1:] == "stopping"]
    assert (stopping <= core.settings.routine_limit_share * core.limiter.max_jerk * (1 + 1e-6)).all()
