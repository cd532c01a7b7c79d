import numpy as np
import pytest
import yaml

from vla_ros.config import ConfigError, load_robot_config
from vla_ros.params import Param


@pytest.mark.parametrize("robot", ["sim", "franka", "franka_ik"])
def test_bundled_robot_configs_are_valid(robot):
    cfg = load_robot_config(robot)
    assert cfg.name == robot
    assert len(cfg.joint_names) == len(cfg.limits.max_velocity) >= 6
    assert np.all(cfg.limits.min_position < cfg.limits.max_position)


def test_franka_has_its_real_joint_names_and_remaps():
    cfg = load_robot_config("franka")
    assert cfg.joint_names[0] == "panda_joint1" and cfg.limits.max_position[3] == pytest.approx(-0.0698)
    assert cfg.topics["commands"] == "/joint_trajectory_controller/joint_trajectory"
    assert cfg.executor["output"] == "joint_trajectory_plan"  # the controller interpolates the plan at 1 kHz


def write(tmp_path, mutate, robot="franka"):
    raw = yaml.safe_load(open(load_robot_config(robot).source))
    mutate(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "mutate, key, problem",
    [
        (
            lambda r: r["joint_limits"]["panda_joint2"].update(max_velocity=-1),
            "joint_limits.panda_joint2.max_velocity",
            "must be > 0, got -1",
        ),
        (
            lambda r: r["joint_limits"]["panda_joint2"].pop("min_position"),
            "joint_limits.panda_joint2.min_position",
            "missing",
        ),
        (lambda r: r["joint_limits"].pop("panda_joint5"), "joint_limits.panda_joint5.min_position", "missing"),
        (
            lambda r: r["joint_limits"]["panda_joint2"].update(max_acceleration=0.0),
            "joint_limits.panda_joint2.max_acceleration",
            "must be > 0, got 0.0",
        ),
        (
            lambda r: r["joint_limits"]["panda_joint2"].update(max_jerk=float("nan")),
            "joint_limits.panda_joint2.max_jerk",
            "must be a number, got nan",
        ),
        (lambda r: r.update(executor={"control_rate_hz": -5}), "executor.control_rate_hz", "must be > 0, got -5"),
        (
            lambda r: r.update(executor={"blend_mode": "blur"}),
            "executor.blend_mode",
            "must be one of ['replace', 'crossfade', 'temporal_ensemble', 'guided'], got 'blur'",
        ),
        (lambda r: r.update(executor={"rate": 5}), "executor.rate", "unknown parameter"),
        (lambda r: r.update(executor={"joint_names": ["a"]}), "executor.joint_names", "is set from the robot config"),
        (
            lambda r: r.update(policy={"max_observation_age_s": "soon"}),
            "policy.max_observation_age_s",
            "must be a float, > 0, got 'soon'",
        ),
        (
            lambda r: r.update(policy={"backend": "pi0", "stepz": 3}),
            "policy.stepz",
            "neither a policy_node parameter nor a 'pi0' backend setting",
        ),
        (
            lambda r: r.update(policy={"backend": "pi0", "steps": "ten"}),
            "policy.steps",
            "input should be a valid integer, got 'ten'",
        ),
        (lambda r: r.update(policy={"backend": "rt2", "steps": 3}), "policy.backend", "unknown backend 'rt2'"),
        (
            lambda r: r["joint_limits"]["panda_joint2"].update(min_position=3.0),
            "joint_limits.panda_joint2",
            "must be below max_position",
        ),
        (
            lambda r: r["joint_limits"]["panda_joint2"].update(max_jrek=3.0),
            "joint_limits.panda_joint2.max_jrek",
            "unknown limit",
        ),
        (
            lambda r: r.update(workspace={"link": "tcp", "min": [0, 0, 0], "max": [1, 1, 1]}),
            "workspace",
            "needs a urdf",
        ),
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


def test_urdf_gives_position_and_velocity_limits_and_the_config_adds_or_overrides(tmp_path):
    cfg = load_robot_config("sim")
    assert cfg.limits.max_position[2] == pytest.approx(2.6)  # elbow, from the URDF only
    assert cfg.limits.max_velocity[3] == pytest.approx(2.5)  # wrist_1, from the URDF
    assert cfg.limits.max_jerk[0] == pytest.approx(200.0)  # from the config: URDFs have no jerk
    path = write(tmp_path, lambda r: (r.pop("home"), r["joint_limits"]["elbow"].update(max_position=1.0)), robot="sim")
    assert load_robot_config(str(path)).limits.max_position[2] == pytest.approx(1.0)
    path = write(tmp_path, lambda r: r["joint_limits"]["elbow"].update(max_position=1.0), robot="sim")
    with pytest.raises(ConfigError, match=r"home: joints \['elbow'\] are outside their position limits"):
        load_robot_config(str(path))  # the home pose is checked against the limits it ends up with


@pytest.mark.parametrize(
    "mutate, key, problem",
    [
        (lambda r: r.update(urdf="config/urdf/nope.urdf"), "urdf", "URDF not found"),
        (
            lambda r: (r.update(joints=r["joints"][:-1] + ["finger"]), r["joint_limits"].pop("gripper")),
            "urdf",
            "has no joints ['finger']",
        ),
        (lambda r: r["workspace"].update(min=[0, 0]), "workspace.min", "list should have at least 3 items"),
        (lambda r: r["workspace"].update(max=[0.8, -0.7, 0.9]), "workspace", "must be below max"),
        (
            lambda r: r["workspace"]["keep_out"].append({"min": [0, 0, 0]}),
            "workspace.keep_out[1].max",
            "missing",
        ),
    ],
)
def test_urdf_and_workspace_errors_name_the_key(tmp_path, mutate, key, problem):
    path = write(tmp_path, mutate, robot="sim")
    with pytest.raises(ConfigError) as err:
        load_robot_config(str(path))
    assert f": {key}: " in str(err.value) and problem in str(err.value)


def test_policy_block_splits_node_parameters_from_backend_settings(tmp_path):
    path = write(
        tmp_path,
        lambda r: r.update(policy={"backend": "pi0", "inference_period_s": 1, "steps": 5, "dtype": "bfloat16"}),
    )
    cfg = load_robot_config(str(path))
    assert cfg.policy == {"backend": "pi0", "inference_period_s": 1.0}
    assert cfg.backend_settings == {"steps": 5, "dtype": "bfloat16"}


def test_franka_ik_takes_its_urdf_from_example_robot_data():
    from vla_ros.core.robot_descriptions import franka_urdf_path
    from vla_ros.paths import resolve_package_path

    cfg = load_robot_config("franka_ik")
    assert cfg.urdf.startswith("example-robot-data:") and resolve_package_path(cfg.urdf) == franka_urdf_path()
    assert cfg.end_effector.link == "panda_hand_tcp" and cfg.end_effector.gripper_joint == "panda_finger_joint1"
    assert cfg.limits.max_velocity[7] == pytest.approx(0.2)  # the finger's, from the URDF
    assert cfg.action_space["preset"] == "libero_ee_delta"


@pytest.mark.parametrize(
    "mutate, key, problem",
    [
        (lambda r: r.update(end_effector={"link": "flange"}), "end_effector.link", "'flange' is not a link of"),
        (
            lambda r: r.update(end_effector={"link": "tcp", "gripper_joint": "claw"}),
            "end_effector.gripper_joint",
            "'claw' is not one of the joints",
        ),
        (lambda r: r.update(end_effector={"link": "tcp", "tool": "x"}), "end_effector.tool", "unknown key"),
        (lambda r: r.update(action_space={"preset": "bridge"}), "action_space.preset", "unknown action space 'bridge'"),
        (
            lambda r: r.update(action_space={"preset": "bridge_ee_delta", "chain": "sideways"}),
            "action_space.chain",
            "must be one of ['cumulative', 'from_state'], got 'sideways'",
        ),
        (
            lambda r: r.update(action_space={"gripper": {"invert": "yes"}}),
            "action_space.gripper.invert",
            "must be true or false, got 'yes'",
        ),
        (
            lambda r: r.update(action_space={"ik": {"max_iterations": 0}}),
            "action_space.ik.max_iterations",
            "must be an integer >= 1, got 0",
        ),
        (
            lambda r: r.update(cartesian_output={"type": "wrench"}),
            "cartesian_output.type",
            "input should be 'pose' or 'twist', got 'wrench'",
        ),
        (
            lambda r: (r.pop("end_effector"), r.update(cartesian_output={"type": "pose"})),
            "cartesian_output",
            "needs end_effector",
        ),
        (lambda r: r.update(urdf="example-robot-data:nope/robot.urdf"), "urdf", "has no robots/nope/robot.urdf"),
    ],
)
def test_end_effector_action_space_and_cartesian_errors_name_the_key(tmp_path, mutate, key, problem):
    with pytest.raises(ConfigError) as err:
        load_robot_config(str(write(tmp_path, mutate, robot="sim")))
    assert f"bad.yaml: {key}: " in str(err.value) and problem in str(err.value), str(err.value)


def test_cartesian_output_selects_the_executor_output():
    from vla_ros.config import parse_robot_config
    from vla_ros.launch_description import executor_parameters, policy_parameters

    raw = yaml.safe_load(open(load_robot_config("sim").source))
    cfg = parse_robot_config(
        {**raw, "cartesian_output": {"type": "twist"}, "action_space": {"preset": "bridge_ee_delta"}}, "x.yaml"
    )
    params = executor_parameters(cfg)
    assert (params["output"], params["cartesian_link"], params["cartesian_frame"]) == ("twist", "tcp", "base")
    policy = policy_parameters(cfg)
    assert (policy["end_effector_link"], policy["gripper_joint"]) == ("tcp", "gripper")
    assert yaml.safe_load(policy["action_space"]) == {"preset": "bridge_ee_delta"}


@pytest.mark.parametrize(
    "param, value, problem",
    [
        (Param("rate", 1.0, "", above=0.0), 0.0, "must be > 0, got 0.0"),
        (Param("rate", 1.0, "", above=0.0), float("nan"), "must be a float, > 0, got nan"),
        (Param("rate", 1.0, "", above=0.0), True, "must be a float, > 0, got True"),
        (Param("n", 1, "", min=1, max=3), 4, "must be <= 3, got 4"),
        (Param("n", 1, "", min=1, max=3), 2.0, "must be a int, >= 1, <= 3, got 2.0"),
        (Param("mode", "a", "", choices=("a", "b")), "c", "must be one of ['a', 'b'], got 'c'"),
        (Param("flag", False, ""), 1, "must be a bool, got 1"),
        (Param("names", ["x"], ""), ["x", 2], "must be a list of strings, got ['x', 2]"),
        (Param("xs", [0.0], ""), [1.0, float("inf")], "must be a list of numbers, got [1.0, inf]"),
    ],
)
def test_a_parameters_type_bounds_and_choices_are_checked_by_its_schema(param, value, problem):
    assert param.problem(value) == problem


def test_a_valid_parameter_value_has_no_problem():
    assert Param("rate", 1.0, "", above=0.0).problem(3) is None  # YAML writes 3 for 3.0
    assert (
        Param("xs", [0.0], "").problem((1.0, 2)) is None and Param("mode", "a", "", choices=("a",)).problem("a") is None
    )
