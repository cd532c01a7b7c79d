"""The soak's limit monitor (vla_ros/soak.py): what counts as a violation."""

import numpy as np

from vla_ros.config import load_robot_config
from vla_ros.soak import LimitMonitor, Tally

LIMITS = load_robot_config("sim").limits


def test_steps_within_two_ticks_pass_and_a_jump_or_an_out_of_range_position_does_not():
    monitor = LimitMonitor(LIMITS, period_s=0.01)
    q = (LIMITS.min_position + LIMITS.max_position) / 2
    monitor.on_command(q)
    monitor.on_command(q + LIMITS.max_velocity * 0.02)  # a late tick integrates at most two periods
    assert monitor.violations == 0
    monitor.on_command(q + LIMITS.max_velocity * 0.02 + np.r_[0.5, np.zeros(len(q) - 1)])  # a 0.5 rad jump
    monitor.on_command(LIMITS.max_position + 0.1)
    assert monitor.violations == 2
    assert "joint 0 stepped" in monitor.examples[0] and "position outside the limits" in monitor.examples[1]


def test_a_node_is_judged_on_its_settled_process_not_on_one_respawned_just_before_the_end():
    from vla_ros.soak import _report

    class Monitor:
        violations, commands, examples = 0, 100, []

    steady = [(float(t), 1, {"rss_kb": 100_000, "fds": 18}) for t in range(100)]
    young = [
        (float(t), 2, {"rss_kb": 30_000 if t < 103 else 380_000, "fds": 3 if t < 103 else 18}) for t in range(100, 106)
    ]
    report = _report(2, Tally(episodes=1, successes=1), Monitor, {"vla_policy": steady + young}, [], {}, {}, 0, {})
    assert report["nodes"]["vla_policy"] == {
        "rss_mb": [97.7, 97.7],
        "rss_growth_pct": 0.0,
        "fds": [18, 18],
        "samples": 80,
    }
    leaking = [(float(t), 1, {"rss_kb": 100_000 + 1000 * t, "fds": 18 + t // 50}) for t in range(100)]
    report = _report(2, Tally(episodes=1, successes=1), Monitor, {"vla_policy": leaking}, [], {}, {}, 0, {})
    node = report["nodes"]["vla_policy"]
    assert node["rss_growth_pct"] > 50 and node["fds"][1] > node["fds"][0]


def test_a_node_whose_every_process_died_within_its_warm_up_is_not_judged():
    from vla_ros.soak import WARMUP_S, _report

    class Monitor:
        violations, commands, examples = 0, 100, []

    short_lived = [
        (float(t), pid, {"rss_kb": 50_000 + 30_000 * (t % 10), "fds": 3 + t % 10})
        for pid in (1, 2, 3)
        for t in range(int(WARMUP_S) // 2)
    ]
    report = _report(2, Tally(episodes=3, interrupted=3), Monitor, {"vla_policy": short_lived}, [], {}, {}, 0, {})
    node = report["nodes"]["vla_policy"]
    assert node == {"rss_mb": None, "rss_growth_pct": None, "fds": None, "samples": 0}


def test_the_report_gives_per_fault_counts_and_whether_each_restarted_policy_resumed_the_task():
    from vla_ros.soak import _report

    class Monitor:
        violations, commands, examples = 0, 100, []

    tally = Tally()
    tally.count("estop", "success")
    tally.count("kill_policy", "interrupted")
    tally.restarts.append({"episode": 2, "fault": "kill_policy", "resumed": True, "next_episode": None})
    tally.count("kill_policy", "interrupted")  # a restart right after a restart: not its next episode
    tally.count("instruction_flood", "success")  # sends the task: no proof the restarted policy kept it
    tally.count("bad_frame", "failure")
    tally.count("estop", "lost")
    injected = {"estop": 2, "kill_policy": 2, "bad_frame": 1, "instruction_flood": 1}
    report = _report(2, tally, Monitor, {}, [], injected, {}, 1, {"restarts": "2", "unresponsive": "1"})
    assert report["per_fault"] == {
        "bad_frame": {"injected": 1, "episodes": 1, "successes": 0, "lost": 0},
        "estop": {"injected": 2, "episodes": 2, "successes": 1, "lost": 1},
        "instruction_flood": {"injected": 1, "episodes": 1, "successes": 1, "lost": 0},
        "kill_policy": {"injected": 2, "episodes": 2, "successes": 0, "lost": 0},
    }
    assert (report["episodes"], report["successes"], report["lost_episodes"]) == (6, 2, 1)
    assert report["episodes_interrupted_by_a_kill"] == 2
    assert report["policy_restarts_checked"] == 1 and report["task_resumed_after_restart"] == 1
    assert report["restarts_detail"][0]["next_episode"] == "failure"
    assert report["executor_policy_holds"] == 1
    assert report["manager_policy"] == {"restarts": "2", "unresponsive": "1"}
