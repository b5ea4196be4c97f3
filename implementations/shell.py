"""A submission's shell configs, evaluated by bash the way a SLURM user sources them.

MLCommons submissions are configured with `source config_<SYSTEM>.sh` on the submit host (AMD's runner does
`env -i bash -c '. config && compgen -e'`); configs `source` shared ones (config_common.sh, ...) relative to
themselves and compute values with `$(( ))`, `$(...)` and `if`. Bash itself follows all of that exactly as the
submitter's host did, so the configs are evaluated by bash, never re-implemented: what a config exports is what
srun hands every task. The files it sourced are recorded on the way (a `source`/`.` that logs its argument).

Stdlib only: the image's launcher (implementations.slurm_world) sources the chosen config with this module inside
the implementation's own image, with the image's Python (3.10 or newer).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# What bash sets on its own; never a config's doing.
BASH_OWN = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "BASH_SOURCED_LOG"})
# A clean baseline for showing what a config sets: nothing of the caller's environment leaks into a plan.
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent"}
TIMEOUT_SECONDS = 60.0
# Every command's file is logged as it runs (a DEBUG trap adds no stack frame, so BASH_SOURCE stays as the
# config sees it when sourced by hand); the files in order of first appearance are what was sourced.
_SCRIPT = r"""
set -T
trap 'printf "%s\n" "${BASH_SOURCE[0]}" >> "$BASH_SOURCED_LOG"' DEBUG
source "$1" > /dev/null || exit $?
trap - DEBUG
env -0
"""


class ConfigError(RuntimeError):
    """A config bash could not source (a syntax error, a sourced file that is missing, a failing `set -e`)."""


@dataclass(frozen=True)
class Sourced:
    """The environment after sourcing a config, and how it got there."""

    config: Path
    environ: dict[str, str]
    exports: dict[str, str]
    unset: tuple[str, ...]
    sourced: tuple[str, ...]
    messages: tuple[str, ...] = field(default=())


def source_config(config: Path, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None,
                  timeout: float = TIMEOUT_SECONDS) -> Sourced:
    """Source `config` in bash with `environ` (default: a clean one) and return the exported environment.

    `exports` is what the config set or changed, `unset` what it removed; `sourced` lists every file sourced,
    the config first. Bash runs in `cwd` (default: a scratch folder, so relative writes land nowhere)."""
    config = config.resolve()
    base = dict(CLEAN_ENV if environ is None else environ)
    with tempfile.TemporaryDirectory(prefix="mlperf-config-") as scratch:
        log = Path(scratch) / "sourced.log"
        env = {**base, "BASH_SOURCED_LOG": str(log)}
        try:
            done = subprocess.run(["bash", "--noprofile", "--norc", "-c", _SCRIPT, "bash", str(config)],
                                  env=env, cwd=str(cwd or scratch), capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError as error:
            raise ConfigError(f"{config.name}: bash is needed to source it ({error})") from error
        except subprocess.TimeoutExpired as error:
            raise ConfigError(f"{config.name}: sourcing it did not finish within {timeout:.0f}s") from error
        seen = dict.fromkeys(line for line in _read(log).splitlines() if line.startswith("/"))
        sourced = (str(config), *(path for path in seen if path != str(config)))
    messages = tuple(line for line in done.stderr.decode(errors="replace").splitlines() if line.strip())
    if done.returncode != 0:
        detail = "; ".join(messages[-3:]) or f"exit {done.returncode}"
        raise ConfigError(f"{config.name}: bash could not source it: {detail}")
    after = _parse_env(done.stdout)
    for name in BASH_OWN:
        after.pop(name, None)
        if name in base:
            after[name] = base[name]
    after.pop("BASH_SOURCED_LOG", None)
    exports = {k: v for k, v in after.items() if base.get(k) != v}
    unset = tuple(sorted(k for k in base if k not in after and k not in BASH_OWN))
    return Sourced(config, after, exports, unset, sourced, messages)


def evaluate(snippet: str, environ: Mapping[str, str], names: list[str], *, cwd: Path,
             timeout: float = TIMEOUT_SECONDS) -> dict[str, str]:
    """Run shell lines taken from a script (defaults, assignments, a sourced file) in `cwd` and read back the
    variables `names`; an array's elements come back joined by commas (the way mount lists are written).

    The snippet's own output goes to stderr; the values come back NUL-separated on stdout."""
    printing = "".join(f"( IFS=,; printf '%s\\0' \"${{{name}[*]-}}\" ) >&3\n" for name in names)
    script = f"exec 3>&1 1>&2\n{snippet}\n{printing}"
    try:
        done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script, "bash"], env=dict(environ),
                              cwd=str(cwd), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired as error:
        raise ConfigError(f"evaluating `{snippet.strip()[:60]}` did not finish within {timeout:.0f}s") from error
    values = done.stdout.split(b"\0")
    return {name: values[i].decode(errors="replace") if i < len(values) else "" for i, name in enumerate(names)}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _parse_env(raw: bytes) -> dict[str, str]:
    environ: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and name:
            environ[name] = value
    return environ


def export_lines(environ: Mapping[str, str]) -> str:
    """`export NAME=value` lines, quoted for a shell (the dry-run's way of showing an environment)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(environ.items()))
