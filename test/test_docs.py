"""The docs are tested: README.md and docs/*.md say only what the code does.

- every command in their shell code blocks and inline code that calls `vla-ros`, `python -m vla_ros...`,
  `make`, `ros2 launch|run|param|lifecycle` or a script under scripts/ parses: its subcommand or module
  exists, every `--option` it uses is in its `--help`, every `name:=value` is a launch argument (or one
  `vla-ros check` reads), every make target is in the Makefile;
- every relative link and #anchor resolves (GitHub's heading anchors), every repository path written in
  backticks exists, every test named in backticks exists;
- the picture of the nodes (docs/architecture.svg) names only nodes, topics and services the code has;
- the hand-written tables that mirror the code (launch arguments, action-space presets) list what it has.

The generated tables (docs/configuration.md, the check matrix of docs/checkpoints.md) are kept current by
test/test_preflight.py. `--help` outputs are collected once per subcommand or module, in parallel.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from vla_ros.paths import PACKAGE_ROOT

ROOT = PACKAGE_ROOT
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
COMMAND_START = re.compile(
    r"^(\S*/)?(vla-ros|python3?(\.\d+)?|make|ros2|bash|scripts/)(\s|$)|^(\S*/)?python3?(\.\d+)? -m vla_ros"
)
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
TRANSITIONS = {"configure", "activate", "deactivate", "cleanup", "shutdown"}
PATH_PREFIXES = ("vla_ros/", "test/", "scripts/", "config/", "docs/", "launch/", "models/", "resource/", ".ci/")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- reading Markdown


@dataclass(frozen=True)
class Snippet:
    doc: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{rel(self.doc)}:{self.line}"


def fenced_blocks(doc: Path) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of every fenced code block."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w+-]*)", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), number + 1, []
        elif line.strip().startswith("```") and lang is not None:
            blocks.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def prose_lines(doc: Path) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, inside = [], False
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            out.append((number, line))
    return out


def inline_code(doc: Path) -> list[Snippet]:
    return [
        Snippet(doc, number, span)
        for number, line in prose_lines(doc)
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", line)
    ]


def shell_commands(doc: Path) -> list[Snippet]:
    """Command lines of the shell code blocks (continuations joined, prompts dropped) and inline commands."""
    out = []
    for lang, start, body in fenced_blocks(doc):
        if lang not in SHELL_LANGUAGES:
            continue
        joined, first = "", start
        for offset, line in enumerate(body):
            line = re.sub(r"^\s*\$ ", "", line)
            if not joined:
                first = start + offset
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            out.append(Snippet(doc, first, joined + line))
            joined = ""
    out += [s for s in inline_code(doc) if COMMAND_START.match(s.text.strip())]
    return out


def split_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell line (comments dropped; split at ; && || | & and parentheses)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in prose
        tokens = text.split()
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    out = []
    for command in commands:
        while command and (re.match(r"^[A-Za-z_]\w*=", command[0]) or command[0] in ("sudo", "time", "exec")):
            command = command[1:]
        if command:
            out.append(command)
    return out


def is_placeholder(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][A-Z_]*(\.\w+)?", token)) or any(c in token for c in "<>[]{}") or "..." in token


def options(tokens: list[str]) -> list[str]:
    """The --options a command uses (brackets of optional parts dropped, '=value' cut)."""
    out = []
    for token in tokens:
        token = token.strip("[],")
        if token.startswith("--") and len(token) > 2 and token != "--help":
            out.append(token.split("=", 1)[0])
    return out


def launch_args(tokens: list[str]) -> list[str]:
    return [t.split(":=", 1)[0].lstrip("[") for t in tokens if ":=" in t and not t.startswith("-")]


# --- what the code accepts


@functools.cache
def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.M)}


def launch_argument_names() -> set[str]:
    from vla_ros.launch_description import LAUNCH_ARGUMENTS

    return set(LAUNCH_ARGUMENTS)


@functools.cache
def check_argument_names() -> set[str]:
    """The name:=value arguments `vla-ros check` reads (vla_ros/preflight.py: args.get("name", ...))."""
    tree = ast.parse((ROOT / "vla_ros" / "preflight.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "args"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


@functools.cache
def console_scripts() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    return set(re.findall(r'"([\w-]+) = vla_ros[\w.]*:main"', text))


@functools.cache
def node_parameters() -> dict[str, set[str]]:
    from vla_ros.params import EXECUTOR, MANAGER, POLICY, SIM

    return {
        "vla_policy": set(POLICY.names()),
        "vla_chunk_executor": set(EXECUTOR.names()),
        "vla_lifecycle_manager": set(MANAGER.names()),
        "vla_sim_robot": set(SIM.names()),
    }


MANAGED_NODES = {"vla_policy", "vla_chunk_executor"}


# --- what each documented command needs


@dataclass(frozen=True)
class Need:
    """One command's check: `help` is the argv (after the python executable) whose --help lists its options."""

    where: str
    text: str
    help: tuple[str, ...] | None = None
    options: tuple[str, ...] = ()
    problem: str = ""


def needs(snippet: Snippet) -> list[Need]:
    out = []
    for argv in split_commands(snippet.text):
        out += command_needs(snippet, argv)
    return out


def command_needs(snippet: Snippet, argv: list[str]) -> list[Need]:
    where, text = snippet.where(), " ".join(argv)
    program, args = Path(argv[0]).name, argv[1:]

    def need(help_argv=None, opts=(), problem=""):
        return [Need(where, text, tuple(help_argv) if help_argv else None, tuple(opts), problem)]

    def unknown_launch_args(names: set[str], what: str) -> list[Need]:
        wrong = sorted(set(launch_args(args)) - names)
        return need(problem=f"{what} arguments {wrong} unknown (known: {sorted(names)})") if wrong else []

    if re.fullmatch(r"python3?(\.\d+)?", program):
        if args[:1] == ["-m"] and len(args) > 1 and args[1].startswith("vla_ros"):
            module, rest = args[1], args[2:]
            if not re.fullmatch(r"vla_ros(\.\w+)*", module):  # `python -m vla_ros...` in prose
                return []
            if module == "vla_ros.cli":
                return cli_needs(where, text, rest)
            if module == "vla_ros.bringup":
                found = unknown_launch_args(launch_argument_names(), "bring-up")
                return need(["-m", module, "--help"], options(rest)) + found
            return need(["-m", module, "--help"], options(rest))
        if args and args[0].startswith("scripts/"):
            return script_needs(where, text, args[0], args[1:])
        return []
    if program == "vla-ros":
        return cli_needs(where, text, args)
    if program == "make":
        wrong = [t for t in args if not t.startswith("-") and "=" not in t and t not in make_targets()]
        return need(problem=f"make targets {wrong} not in the Makefile") if wrong else []
    if program == "bash" and args and args[0].startswith("scripts/"):
        return script_needs(where, text, args[0], [])
    if argv[0].startswith("scripts/"):
        return script_needs(where, text, argv[0], args)
    if program == "ros2":
        return ros2_needs(where, text, args)
    return []


def cli_needs(where: str, text: str, args: list[str]) -> list[Need]:
    """`vla-ros SUB ...` / `python -m vla_ros.cli SUB ...`: SUB's --help runs and lists the options."""
    if not args or args[0] in ("-h", "--help") or is_placeholder(args[0]):
        return [Need(where, text, ("-m", "vla_ros.cli", "--help"))]
    sub, rest = args[0], args[1:]
    if sub == "bench":
        if not rest or rest[0].startswith("-") or is_placeholder(rest[0]):
            return [Need(where, text, ("-m", "vla_ros.cli", "bench", "--help"))]
        return [Need(where, text, ("-m", "vla_ros.cli", "bench", rest[0], "--help"), tuple(options(rest[1:])))]
    out = [Need(where, text, ("-m", "vla_ros.cli", sub, "--help"), tuple(options(rest)))]
    names = {"bringup": launch_argument_names(), "check": check_argument_names()}.get(sub)
    if names is not None:
        wrong = sorted(set(launch_args(rest)) - names)
        if wrong:
            out.append(Need(where, text, problem=f"`vla-ros {sub}` arguments {wrong} unknown (known: {sorted(names)})"))
    return out


def script_needs(where: str, text: str, script: str, rest: list[str]) -> list[Need]:
    if not (ROOT / script).is_file():
        return [Need(where, text, problem=f"no script {script}")]
    if script.endswith(".py") and not script.startswith("scripts/fixtures/"):
        return [Need(where, text, (script, "--help"), tuple(options(rest)))]
    return []


def ros2_needs(where: str, text: str, args: list[str]) -> list[Need]:
    verb, rest = (args[0], args[1:]) if args else ("", [])
    problems = []
    if verb == "launch" and rest[:1] == ["vla_ros"]:
        if len(rest) < 2 or not (ROOT / "launch" / rest[1]).is_file():
            problems.append(f"no launch file launch/{rest[1:2]}")
        wrong = sorted(set(launch_args(rest)) - launch_argument_names())
        if wrong:
            problems.append(f"launch arguments {wrong} unknown (known: {sorted(launch_argument_names())})")
    elif verb == "run" and rest[:1] == ["vla_ros"]:
        if len(rest) < 2 or rest[1] not in console_scripts():
            problems.append(f"no executable {rest[1:2]} (console_scripts: {sorted(console_scripts())})")
    elif verb == "param" and rest[:1] in (["set"], ["get"]) and len(rest) >= 3:
        node, name = rest[1].lstrip("/"), rest[2]
        if node not in node_parameters():
            problems.append(f"no node {node}")
        elif name not in node_parameters()[node]:
            problems.append(f"{node} has no parameter {name}")
    elif verb == "lifecycle" and len(rest) >= 2:
        node = rest[1].lstrip("/")
        if node not in MANAGED_NODES:
            problems.append(f"{node} is not a managed node ({sorted(MANAGED_NODES)})")
        if rest[0] == "set" and (len(rest) < 3 or rest[2] not in TRANSITIONS):
            problems.append(f"not a lifecycle transition: {rest[2:3]}")
    return [Need(where, text, problem=p) for p in problems]


@functools.cache
def all_needs() -> tuple[Need, ...]:
    return tuple(n for doc in DOCS for snippet in shell_commands(doc) for n in needs(snippet))


def run_help(argv: tuple[str, ...]) -> tuple[int, str]:
    """`python ARGV` (ending in --help) in a subprocess: exit code and output."""
    assert argv[-1] == "--help", argv  # never run a documented command itself
    try:
        done = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def in_process(argv: tuple[str, ...]) -> bool:
    """Argparse modules with heavy imports (torch, transformers): their --help runs in this process, so the
    imports are paid once for all of them."""
    return (
        argv[:2] == ("-m", "vla_ros.cli")
        and argv[2:3] == ("bench",)
        and len(argv) == 5
        or (argv[0] == "-m" and argv[1].startswith(("vla_ros.benchmarks.", "vla_ros.backends.")))
    )


def run_help_in_process(argv: tuple[str, ...]) -> tuple[int, str]:
    """`python ARGV` run here, with argparse allowed to do nothing but print the help."""
    import argparse
    import contextlib
    import io
    import runpy

    assert argv[-1] == "--help", argv
    original = argparse.ArgumentParser.parse_known_args

    def help_only(self, args=None, namespace=None):
        if not {"-h", "--help"} & set(sys.argv[1:] if args is None else args):
            raise RuntimeError(f"{' '.join(argv)}: parsed arguments without --help")
        return original(self, args, namespace)

    out, saved_argv, code = io.StringIO(), sys.argv, 0
    argparse.ArgumentParser.parse_known_args = help_only
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if argv[1] == "vla_ros.cli":
                from vla_ros import cli

                code = cli.main(list(argv[2:])) or 0
            else:
                sys.argv = [argv[1], *argv[2:]]
                runpy.run_module(argv[1], run_name="__main__", alter_sys=False)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except Exception as exc:  # noqa: BLE001 - reported as the command's failure
        code, out = 1, io.StringIO(f"{type(exc).__name__}: {exc}")
    finally:
        argparse.ArgumentParser.parse_known_args = original
        sys.argv = saved_argv
    return code, out.getvalue()


@functools.cache
def help_outputs() -> dict[tuple[str, ...], tuple[int, str]]:
    """Each distinct --help run once: light ones in parallel subprocesses, heavy ones here meanwhile."""
    argvs = sorted({n.help for n in all_needs() if n.help})
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {a: pool.submit(run_help, a) for a in argvs if not in_process(a)}
        here = {a: run_help_in_process(a) for a in argvs if in_process(a)}
        return {**here, **{a: f.result() for a, f in futures.items()}}


# --- commands


def test_the_docs_hold_commands_to_check():
    """The extraction finds the README's commands (a guard against a parser that silently finds nothing)."""
    texts = [" ".join(argv) for doc in DOCS for s in shell_commands(doc) for argv in split_commands(s.text)]
    assert any(t.startswith("make demo") for t in texts) and any("check robot:=franka_ik" in t for t in texts)
    assert any(t.startswith("ros2 launch vla_ros") for t in texts)


def test_every_documented_command_parses():
    outputs = help_outputs()
    problems = []
    for need in all_needs():
        if need.problem:
            problems.append(f"{need.where}: `{need.text}`: {need.problem}")
            continue
        if need.help is None:
            continue
        code, text = outputs[need.help]
        if code != 0:
            problems.append(f"{need.where}: `{need.text}`: `{' '.join(need.help)}` exits {code}: {text[-300:]}")
            continue
        missing = [o for o in need.options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
        if missing:
            problems.append(f"{need.where}: `{need.text}`: options {missing} are not in `{' '.join(need.help)}`")
    assert problems == [], "\n".join(problems)


# --- links, anchors, paths, test names


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, only letters, marks, numbers, '_', '-' and
    spaces kept, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.strip().lower()
    kept = "".join(
        c for c in text if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"
    )
    return kept.replace(" ", "-")


@functools.cache
def anchors(doc: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(doc):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
        out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line))
    return frozenset(out)


def links(doc: Path) -> list[tuple[int, str]]:
    out = []
    for number, line in prose_lines(doc):
        line = re.sub(r"`[^`]*`", "", line)
        out += [(number, t) for t in re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line)]
        out += [(number, t) for t in re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", line)]
        out += [(number, t) for t in re.findall(r"(?:src|href)=\"([^\"]+)\"", line)]
    return out


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for doc in DOCS:
        for number, target in links(doc):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (doc.parent / path_part).resolve() if path_part else doc
            where = f"{rel(doc)}:{number}: ({target})"
            if not path.exists():
                problems.append(f"{where}: no {path_part}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.append(f"{where}: no heading #{anchor} in {rel(path)} (has {sorted(anchors(path))})")
    assert problems == [], "\n".join(problems)


def test_every_repository_path_in_backticks_exists():
    problems = []
    for doc in DOCS:
        for snippet in inline_code(doc):
            text = snippet.text.strip().split("::")[0].rstrip(":,")
            if not text.startswith(PATH_PREFIXES) or re.search(r"[\s<>{}*…]|\.\.\.", text):
                continue
            if not (ROOT / text).exists():
                problems.append(f"{snippet.where()}: `{snippet.text}` does not exist")
    assert problems == [], "\n".join(problems)


def test_every_test_named_in_the_docs_exists():
    defined = {
        name for path in (ROOT / "test").rglob("test_*.py") for name in re.findall(r"def (test_\w+)", path.read_text())
    }
    problems = [
        f"{s.where()}: no test `{s.text}`"
        for doc in DOCS
        for s in inline_code(doc)
        if re.fullmatch(r"test_\w+", s.text) and s.text not in defined
    ]
    assert problems == [], "\n".join(problems)


def test_the_docs_index_links_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    linked = {t.partition("#")[0] for _, t in links(ROOT / "docs" / "README.md")}
    missing = [d.name for d in DOCS[1:] if d.name != "README.md" and d.name not in linked]
    assert missing == [], f"docs pages not linked from docs/README.md (add a line for each): {missing}"
    assert "../README.md" in index


def test_the_readme_starts_with_the_two_commands_and_stays_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (at most 250: the rest belongs in docs/)"
    block = fenced_blocks(ROOT / "README.md")[0]
    assert block[1] <= 4 and block[2][0].startswith("make demo") and block[2][1].startswith("make test"), block


# --- the picture of the nodes


def created_interfaces(module: str) -> list[tuple[str, str, str | None]]:
    """(kind, name, message type) of every create_* call of a node module with a literal name; an IfExp
    name gives both branches, an f-string its literal tail (f"/{n}/change_state" -> "change_state")."""
    kinds = {
        "create_publisher": "pub",
        "create_lifecycle_publisher": "pub",
        "create_subscription": "sub",
        "create_service": "srv",
        "create_client": "client",
    }
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    assigned = {  # a name bound once to a topic expression: topic = "a" if x else "b"
        node.targets[0].id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }

    def names(expr) -> list[str]:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return [expr.value]
        if isinstance(expr, ast.Name) and expr.id in assigned and assigned[expr.id] is not expr:
            return names(assigned[expr.id])
        if isinstance(expr, ast.IfExp):
            return names(expr.body) + names(expr.orelse)
        if isinstance(expr, ast.JoinedStr) and isinstance(expr.values[-1], ast.Constant):
            return [expr.values[-1].value.rsplit("/", 1)[-1]]
        return []

    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in kinds:
            if len(node.args) < 2:
                continue
            msg_type = node.args[0].id if isinstance(node.args[0], ast.Name) else None
            out += [(kinds[node.func.attr], name, msg_type) for name in names(node.args[1])]
    return out


def module_constant(module: str, name: str):
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{module}.{name}")


def is_lifecycle_node(module: str) -> bool:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    return any(
        isinstance(node, ast.ClassDef) and any(ast.unparse(base).endswith("LifecycleNode") for base in node.bases)
        for node in ast.walk(tree)
    )


def test_the_picture_names_only_the_nodes_topics_and_services_of_the_code():
    from vla_ros.launch_description import node_specs

    specs = {s.name: s for s in node_specs("sim", use_sim=True)}
    code = {name: created_interfaces(spec.module) for name, spec in specs.items()}
    # topics named by parameters: the policy's cameras (the sim robot config's), the sim's own camera topics
    code["vla_policy"] += [("sub", t, None) for t in specs["vla_policy"].parameters["camera_topics"]]
    sim_cameras = module_constant(specs["vla_sim_robot"].module, "CAMERA_TOPICS").values()
    code["vla_sim_robot"] += [("pub", t, None) for t in sim_cameras]

    svg = ET.parse(ROOT / "docs" / "architecture.svg").getroot()
    elements = [e for e in svg.iter() if (e.get("class") or "").split()[:1] in (["node"], ["topic"], ["service"])]
    problems = []

    def has(node: str, kind: str, name: str, msg_type: str | None) -> bool:
        short = msg_type.rsplit("/", 1)[-1] if msg_type else None
        return any(k == kind and n == name and (t is None or short is None or t == short) for k, n, t in code[node])

    drawn_nodes = set()
    for e in elements:
        kind = e.get("class").split()[0]
        label = "".join(e.itertext())
        if kind == "node":
            node = e.get("data-node")
            drawn_nodes.add(node)
            if node not in specs:
                problems.append(f"node {node} is not in the bring-up's node list {sorted(specs)}")
            elif e.get("data-executable") != specs[node].executable or node not in label:
                problems.append(f"node {node}: executable {e.get('data-executable')}, label {label!r}")
        elif kind == "topic":
            name, msg_type = e.get("data-topic"), e.get("data-type")
            if name not in label:
                problems.append(f"topic {name} labelled {label!r}")
            for direction in ("pub", "sub"):
                for node in (e.get(f"data-{direction}") or "").split():
                    if node not in code or not has(node, direction, name, msg_type):
                        problems.append(f"{node} does not {direction} {name} ({msg_type})")
            if not (e.get("data-pub") or e.get("data-sub")):
                problems.append(f"topic {name}: neither data-pub nor data-sub")
        else:
            name, msg_type = e.get("data-service"), e.get("data-type")
            if name not in label:
                problems.append(f"service {name} labelled {label!r}")
            client = e.get("data-client")
            for node in (e.get("data-node") or "").split():
                if node not in code:
                    problems.append(f"service {name}: no node {node}")
                elif client:  # a lifecycle service: the node is a LifecycleNode, the client calls it
                    if not is_lifecycle_node(specs[node].module):
                        problems.append(f"{node} is not a lifecycle node (service {name})")
                    if client not in code or not has(client, "client", name, msg_type):
                        problems.append(f"{client} has no client of {name} ({msg_type})")
                elif not has(node, "srv", name, msg_type):
                    problems.append(f"{node} serves no {name} ({msg_type})")
    if drawn_nodes != set(specs):
        problems.append(f"nodes drawn {sorted(drawn_nodes)}, the bring-up starts {sorted(specs)}")
    assert problems == [], "\n".join(problems)


# --- hand-written tables that mirror the code


def table_first_column(doc: Path, heading: str, header: str) -> list[str]:
    """The first-column code names of the table under `heading` whose header starts with `| header |`."""
    lines = doc.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^#+\s+{re.escape(heading)}\s*$", line))
    rows, inside = [], False
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith(f"| {header} |"):
            inside = True
            continue
        if inside and line.startswith("|"):
            cell = line.split("|")[1].strip()
            if not set(cell) <= set("-: "):
                rows.append(cell.strip("`"))
        elif inside:
            break
    return rows


def test_the_launch_argument_table_lists_the_launch_arguments_and_their_defaults():
    from vla_ros.launch_description import LAUNCH_ARGUMENTS

    doc = ROOT / "docs" / "interfaces.md"
    documented = table_first_column(doc, "Starting the nodes", "argument")
    assert documented == list(LAUNCH_ARGUMENTS), (
        f"docs/interfaces.md's launch-argument table lists {documented}; vla_ros/launch_description.py has "
        f"{list(LAUNCH_ARGUMENTS)} (one row per argument, in that order)"
    )
    rows = {
        line.split("|")[1].strip().strip("`"): line for line in doc.read_text().splitlines() if line.startswith("| `")
    }
    wrong = [n for n, (default, _) in LAUNCH_ARGUMENTS.items() if default and f"`{default}`" not in rows[n]]
    assert wrong == [], f"defaults not stated for {wrong}"


def test_the_preset_table_lists_the_action_space_presets():
    from vla_ros.core.action_space import PRESETS

    assert table_first_column(ROOT / "docs" / "action-spaces.md", "Presets", "preset") == list(PRESETS)


@pytest.mark.parametrize(
    "heading, expected",
    [
        ("Robot configuration: `config/robots/<robot>.yaml`", "robot-configuration-configrobotsrobotyaml"),
        ("LeRobot π₀ / π₀.5, and SO-101 fine-tunes", "lerobot-π₀--π₀5-and-so-101-fine-tunes"),
        ("#### policy_node (vla_policy)".lstrip("# "), "policy_node-vla_policy"),
    ],
)
def test_anchors_are_githubs(heading, expected):
    assert slug(heading) == expected
