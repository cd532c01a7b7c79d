"""ament_python package: `colcon build` installs launch/config/models to share/vla_ros and the
node executables to lib/vla_ros. Python dependencies are pinned in requirements.txt."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vla_ros"
# sim_expert is the tabletop sim's scripted expert (demonstrations recorded through the nodes). The diagnostic
# backends are not registered: the pipeline benchmark names `noop` by module path (vla_ros.backends.noop:BACKEND),
# the test suite registers `noop` and its `fault_injection` itself (test/plugins/diagnostic)
BUNDLED_BACKENDS = ("octo", "openvla", "pi0", "smolvla", "openpi_remote", "sim_expert")


def share_tree(*top_dirs):
    """data_files for every file under `top_dirs`, keeping the folder layout under share/vla_ros."""
    entries = {}
    for top in top_dirs:
        for path in glob(os.path.join(top, "**", "*"), recursive=True):
            if os.path.isfile(path) and "__pycache__" not in path:
                entries.setdefault(os.path.join("share", PACKAGE, os.path.dirname(path)), []).append(path)
    return [(d, sorted(files)) for d, files in sorted(entries.items())]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={"vla_ros.sim": ["assets/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *share_tree("launch", "config", "models"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla_ros maintainers",
    maintainer_email="vla-ros@example.com",
    description="Vision-Language-Action policies for ROS 2: policy node, chunk executor, sim.",
    license="Apache-2.0",
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={
        "console_scripts": [
            "policy_node = vla_ros.nodes.policy_node:main",
            "chunk_executor = vla_ros.nodes.chunk_executor_node:main",
            "sim_robot = vla_ros.nodes.sim_robot_node:main",
            "lifecycle_manager = vla_ros.nodes.lifecycle_manager:main",
            "recorder = vla_ros.nodes.recorder_node:main",
            "rerun_viz = vla_ros.nodes.rerun_node:main",
            "vla_bringup = vla_ros.bringup:main",
            "vla-ros = vla_ros.cli:main",
        ],
        # backends are plug-ins (vla_ros/registry.py): other packages add theirs to this group
        "vla_ros.backends": [f"{name} = vla_ros.backends.{name}:BACKEND" for name in BUNDLED_BACKENDS],
    },
)
