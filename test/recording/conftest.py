"""The recording tests' demo runs through the real nodes."""

from __future__ import annotations

import os

import pytest

from vla_ros.demo import demo_environment, run_demo


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
