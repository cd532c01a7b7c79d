"""ros2 launch vla_ros policy.launch.py robot:=sim [backend:=octo] [model_path:=...] [use_sim:=true]

Starts the nodes that `vla_ros.launch_description.node_specs` lists for the robot's config
(`config/robots/<robot>.yaml`): the policy node, the chunk executor and, for the simulated
robot, the MuJoCo sim. The pip-only bring-up (`python -m vla_ros.bringup`) starts the same list.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from vla_ros.launch_description import node_specs


def _nodes(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    use_sim = arg("use_sim").lower()
    specs = node_specs(
        arg("robot"),
        backend=arg("backend"),
        model_path=arg("model_path"),
        use_sim=None if use_sim == "" else use_sim in ("true", "1", "yes"),
    )
    return [
        Node(
            package="vla_ros",
            executable=spec.executable,
            name=spec.name,
            parameters=[spec.parameters],
            remappings=list(spec.remappings),
            output="screen",
        )
        for spec in specs
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="sim", description="robot config: config/robots/<robot>.yaml"),
        DeclareLaunchArgument("backend", default_value="", description="policy backend (default: the robot config's)"),
        DeclareLaunchArgument("model_path", default_value="", description="checkpoint folder (default: the robot config's)"),
        DeclareLaunchArgument("use_sim", default_value="", description="start the MuJoCo sim robot (default: the robot config's use_sim)"),
        OpaqueFunction(function=_nodes),
    ])
