"""The CLI explains itself: every command listed with a line, every option with help, --help everywhere."""

import argparse
import subprocess
import sys

import pytest

from vla_ros import cli


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers `vla-ros` builds (captured, not run)."""
    captured = {}

    def capture(self, args=None, namespace=None):
        captured.setdefault("parser", self)
        raise SystemExit(0)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            cli.main(["demo"])
    finally:
        argparse.ArgumentParser.parse_args = original
    return dict(captured["parser"]._subparsers._group_actions[0].choices)


def test_every_command_is_listed_with_a_line_and_every_option_has_help():
    parsers = command_parsers()
    assert {"demo", "check", "serve", "convert", "bench", "bringup", "params"} <= set(parsers)
    listing = subprocess.run(
        [sys.executable, "-m", "vla_ros.cli", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for name in parsers:
        assert f"    {name}" in listing, name
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, parser in parsers.items()
        for a in parser._actions
        if a.dest != "help" and not a.help
    ]
    assert missing == [], missing


@pytest.mark.parametrize(
    "args, says",
    [
        (["bringup", "--help"], "robot"),
        (["check", "--help"], "vla-ros check"),
        (["bench"], "pipeline"),
        (["bench", "executor", "--help"], "--rate"),
        (["soak", "--help"], "(default: 2.0)"),
    ],
)
def test_help_works_for_the_bringup_the_preflight_and_the_benchmarks(args, says, capsys):
    assert run(args) == 0
    assert says in capsys.readouterr().out


def test_an_unknown_benchmark_is_named_and_the_list_printed(capsys):
    assert run(["bench", "nope"]) == 2
    captured = capsys.readouterr()
    assert "unknown benchmark 'nope'" in captured.err and "remote" in captured.out


def run(args: list[str]) -> int:
    """cli.main's exit code, whether it returns it or argparse exits with it."""
    try:
        return cli.main(args)
    except SystemExit as exit_:
        return exit_.code or 0
