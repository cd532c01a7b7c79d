"""ros2 launch vla_ros policy.launch.py robot:=sim [backend:=octo] [model_path:=...] [device:=cuda:0]
                                        [use_sim:=true] [autostart:=true] [respawn:=false]
                                        [dds_profile:=shm|shm_loopback|none|/path.xml]

Starts the nodes that `vla_ros.launch_description` lists for the robot's config
(`config/robots/<robot>.yaml`): the chunk executor and the policy node (managed lifecycle nodes),
the lifecycle manager that configures and activates them (`autostart`), and, for the simulated
robot, the MuJoCo sim. The nodes get the Fast DDS profile `dds_profile` names (default `shm`:
shared memory on this host and UDP on every interface, so other hosts are reached as
ROS_AUTOMATIC_DISCOVERY_RANGE / ROS_STATIC_PEERS allow, unless FASTDDS_DEFAULT_PROFILES_FILE is
already set; `shm_loopback`: UDP on 127.0.0.1 only). The pip-only bring-up
(`python -m vla_ros.bringup`) starts the same list.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.launch_description import (
    LAUNCH_ARGUMENTS,
    dds_environment,
    respawn_from_launch_arguments,
    specs_from_launch_arguments,
)


def _nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    specs = specs_from_launch_arguments(values)
    env = dds_environment(values["dds_profile"])
    respawn = respawn_from_launch_arguments(values)
    return [
        Node(
            package="vla_ros",
            executable=spec.executable,
            name=spec.name,
            parameters=[spec.parameters],
            remappings=list(spec.remappings),
            additional_env=env,
            output="screen",
            respawn=respawn,
            respawn_delay=1.0,
        )
        for spec in specs
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
