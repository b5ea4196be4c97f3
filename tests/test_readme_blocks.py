"""Every shell block of the READMEs and docs/ names commands and options that exist, so the documentation
cannot drift from the code: each `invoke TASK --option`, `nox -s SESSION` and `python -m MODULE --option` is
looked up in the task collection, the noxfile and the module's own --help. The blocks that run on this machine
are also run: the README's two commands (tests/test_python313.py runs command 1 verbatim; command 2 is what
CI runs), and its cluster path against the sandbox (tests/backendai/test_readme_cluster_path.py)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCUMENTS = sorted({REPO_ROOT / "README.md", *REPO_ROOT.glob("docs/*.md"), *REPO_ROOT.glob("*/README.md")})
SEPARATORS = {"&&", "||", ";", "|", "&"}


def shell_blocks(path: Path) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", path.read_text(), re.S | re.M)


def commands(block: str) -> list[list[str]]:
    """The commands of a block: continuation lines joined, comments and redirections dropped, split at && ; |."""
    found: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        skip_next = False
        for token in lexer:
            if skip_next:
                skip_next = False
            elif token in SEPARATORS:
                found.append(current)
                current = []
            elif token in ("<", ">", ">>", "2>", "<<"):
                skip_next = True
            else:
                current.append(token)
        found.append(current)
    return [command for command in found if command]


def documented() -> list[tuple[str, list[str]]]:
    return [(f"{path.relative_to(REPO_ROOT)}: {' '.join(command)[:70]}", command)
            for path in DOCUMENTS for block in shell_blocks(path) for command in commands(block)]


def options(tokens: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in tokens if token.startswith("--") and token != "--"]


@cache
def tasks() -> dict[str, set[str]]:
    """Every task of the project's collection with its options (`--flag` spellings, as invoke parses them)."""
    sys.path.insert(0, str(REPO_ROOT))
    from tasks import ns  # noqa: PLC0415 - the project's invoke root

    found: dict[str, set[str]] = {}
    for name in ns.task_names:
        task = ns[name]
        spellings = set()
        for argument in task.get_arguments():
            for spelled in argument.names:
                spellings.add(f"--{spelled.replace('_', '-')}")
                if argument.kind is bool:
                    spellings.add(f"--no-{spelled.replace('_', '-')}")
        found[name] = spellings
        for alias in ns.task_names[name]:
            found[alias] = spellings
    return found


@cache
def nox_sessions() -> set[str]:
    return set(re.findall(r"@nox\.session\([^)]*\)\ndef (\w+)", (REPO_ROOT / "noxfile.py").read_text()))


@cache
def module_help(module: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, f"python -m {module} --help failed: {result.stderr[-2000:]}"
    return result.stdout


def check_invoke(tokens: list[str]) -> None:
    known = tasks()
    name = tokens[1]
    assert name in known, f"no task {name}; the tasks are {sorted(known)}"
    unknown = [option for option in options(tokens[2:]) if option not in known[name] and option != "--help"]
    assert not unknown, f"invoke {name} has no option {', '.join(unknown)} (it has {sorted(known[name])})"


def check_nox(tokens: list[str]) -> None:
    split = tokens.index("--") if "--" in tokens else len(tokens)
    named = [token for token in tokens[:split] if not token.startswith("-") and token != "nox"]
    assert named and set(named) <= nox_sessions(), f"nox sessions {named}; the noxfile has {sorted(nox_sessions())}"


def check_python(tokens: list[str]) -> None:
    if "-m" not in tokens:
        return
    module = tokens[tokens.index("-m") + 1]
    if module in ("venv", "pip", "pytest", "tests.harness"):
        return
    assert importlib.util.find_spec(module) is not None, f"no module {module}"
    text = module_help(module)
    unknown = [option for option in options(tokens[tokens.index("-m") + 2:]) if option not in text]
    assert not unknown, f"python -m {module} --help names no {', '.join(unknown)}"


def test_the_documents_have_shell_blocks_to_check() -> None:
    names = {path.name for path in DOCUMENTS}
    assert {"README.md", "clusters.md", "sandbox.md"} <= names
    assert len(documented()) > 40


@pytest.mark.parametrize(("where", "tokens"), documented(), ids=[where for where, _ in documented()])
def test_a_documented_command_exists_with_its_options(where: str, tokens: list[str]) -> None:
    program = tokens[0]
    if program == "invoke" and len(tokens) > 1 and not tokens[1].startswith("-"):
        check_invoke(tokens)
    elif program == "nox" and "-s" in tokens:
        check_nox(tokens)
    elif program in ("python", "python3", ".venv/bin/python"):
        check_python(tokens)


def test_a_wrong_option_or_task_is_caught() -> None:
    """The checks themselves fail where the documentation would be wrong."""
    with pytest.raises(AssertionError, match="has no option --nodez"):
        check_invoke(["invoke", "maskrcnn.run", "--nodez", "2"])
    with pytest.raises(AssertionError, match=r"no task maskrcnn\.runn"):
        check_invoke(["invoke", "maskrcnn.runn"])
    with pytest.raises(AssertionError, match="nox sessions"):
        check_nox(["nox", "-s", "tsets"])
    assert commands("invoke a --x 1 && invoke b \\\n  --y # comment --z\nnox -s lint tests -- -m 'not slow'") == [
        ["invoke", "a", "--x", "1"], ["invoke", "b", "--y"], ["nox", "-s", "lint", "tests", "--", "-m", "not slow"]]
