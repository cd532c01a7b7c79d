import numpy as np
import pytest
import yaml

from vla_ros.config import ConfigError, load_robot_config


@pytest.mark.parametrize("robot", ["sim", "franka"])
def test_bundled_robot_configs_are_valid(robot):
    cfg = load_robot_config(robot)
    assert cfg.name == robot
    assert len(cfg.joint_names) == len(cfg.limits.max_velocity) >= 6
    assert np.all(cfg.limits.min_position < cfg.limits.max_position)


def test_franka_has_its_real_joint_names_and_remaps():
    cfg = load_robot_config("franka")
    assert cfg.joint_names[0] == "panda_joint1" and cfg.limits.max_position[3] == pytest.approx(-0.0698)
    assert cfg.topics["commands"] == "/forward_position_controller/commands"


def write(tmp_path, mutate):
    raw = yaml.safe_load(open(load_robot_config("sim").source))
    mutate(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "mutate, key, problem",
    [
        (lambda r: r["joint_limits"]["elbow"].update(max_velocity=-1), "joint_limits.elbow.max_velocity", "must be > 0, got -1"),
        (lambda r: r["joint_limits"]["elbow"].pop("min_position"), "joint_limits.elbow.min_position", "missing"),
        (lambda r: r["joint_limits"].pop("wrist_1"), "joint_limits.wrist_1", "missing"),
        (lambda r: r["joint_limits"]["elbow"].update(min_position=3.0), "joint_limits.elbow", "must be below max_position"),
        (lambda r: r.update(topics={"cmd": "x"}), "topics.cmd", "unknown topic"),
        (lambda r: r.update(cameras={"front": {}}), "cameras.front.topic", "missing"),
        (lambda r: r.update(jionts=[]), "jionts", "unknown key"),
        (lambda r: r.update(joints=["a", "a"]), "joints", "duplicate"),
    ],
)
def test_errors_name_the_file_the_key_and_the_problem(tmp_path, mutate, key, problem):
    path = write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_robot_config(str(path))
    msg = str(err.value)
    assert msg.startswith(str(path)) and f": {key}: " in msg and problem in msg


def test_unknown_robot_lists_the_available_ones():
    with pytest.raises(ConfigError, match=r"available robots: \[.*'sim'"):
        load_robot_config("no_such_robot")
