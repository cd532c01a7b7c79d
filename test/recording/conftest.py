"""The recording tests' demo runs through the real nodes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vla_ros.demo import demo_environment, run_demo
from vla_ros.recording.lerobot import read_dataset


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`run(first_domain, **run_demo_arguments)`: the demo in a fresh run folder on a domain of its own (from
    `first_domain`, 40 per test process); its summary. The environment run_demo sets is restored after."""

    def run(first_domain: int, **kwargs) -> dict:
        run_dir = tmp_path_factory.mktemp("demo") / "run"
        domain = first_domain + os.getpid() % 40
        with pytest.MonkeyPatch.context() as mp:
            for key, value in demo_environment(run_dir, domain).items():
                mp.setenv(key, value)
            return run_demo(run_dir=run_dir, domain_id=domain, log=lambda *_: None, **kwargs)

    return run


@pytest.fixture
def check_export(tmp_path):
    """`check(recording)`: `vla-ros export` of a demo recording's bags (`summary["recording"]`) with the sim
    config gives the recorder's dataset: features, tasks, every column, every frame, the outcomes."""

    def check(rec: dict) -> None:
        from vla_ros.cli import main

        assert main(["export", rec["bags"], "--lerobot", str(tmp_path / "exported"), "--robot", "sim"]) == 0
        ours, exported = read_dataset(rec["lerobot"]), read_dataset(tmp_path / "exported")
        assert exported.info["features"] == ours.info["features"] and exported.tasks == ours.tasks
        for key, values in ours.columns.items():
            np.testing.assert_array_equal(exported.columns[key], values, err_msg=key)
        for cam in ours.cameras:
            np.testing.assert_array_equal(exported.frames(cam, 0), ours.frames(cam, 0))
        assert [e["outcome"] for e in exported.episodes] == [e["outcome"] for e in ours.episodes]

    return check
