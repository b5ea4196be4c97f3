"""How a submission starts its tasks, read from its scripts without running them.

`run.sub` (SLURM) starts the per-task entry with one `srun --ntasks-per-node=<GPUs>` line inside an
enroot/pyxis container, the container's mounts in `--container-mounts=` (built up in `_cont_mounts`, inline or
in a sourced config_mounts.sh); `run_with_docker.sh` starts it with `docker exec` once per node. What the SLURM
host does around the tasks (page-cache drop, binding helpers, scontrol, power monitors, NCCL tests) is found
line by line, so a run can say what it does instead and what it leaves out. Stdlib only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# srun options that take no value (everything else without `=` takes the next word).
SRUN_FLAGS = frozenset({
    "-l", "--label", "--overlap", "--exclusive", "-u", "--unbuffered", "-K", "--kill-on-bad-exit", "-Q", "--quiet",
    "-v", "--verbose", "--no-container-mount-home", "--container-mount-home", "--container-remap-root",
    "--no-container-remap-root", "--container-writable", "--container-readonly", "--no-container-entrypoint",
})
# Words that end a command on a logical line (a pipe into tee, a redirection, a subshell's end).
_COMMAND_END = ("|", "|&", "||", "&&", ";", ")", ">", ">>", "2>&1", "&>")
_ARRAY_EXPANSION = re.compile(r"^\$\{[A-Za-z_]\w*\[@\]\}$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
_DEFAULT = re.compile(r'^:\s+"?\$\{[A-Za-z_]\w*:?[=-]')
_IF_OPEN = re.compile(r"(?:^|[;&|({]\s*|\bthen\s+|\belse\s+|\bdo\s+)if\s")
_IF_CLOSE = re.compile(r"(?:^|[;&|]\s*)fi\b")
_MOUNT_ENTRY = re.compile(r"(?P<host>[^,\"'\s]*?):(?P<path>/[A-Za-z0-9_./@-]*)(?::(?P<opt>ro|rw))?(?=[,\"'\s)]|$)")
# What a SLURM host does around the tasks, and what a Backend.AI run does about it.
HOST_STEPS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"drop_caches"), "page-cache drop on the host",
     "done another way: every container evicts the data mounts' files from the page cache (posix_fadvise "
     "DONTNEED) and logs cache_clear"),
    (re.compile(r"\bscontrol\b"), "scontrol (job and host names)",
     "not needed: hosts come from BACKENDAI_CLUSTER_HOSTS, SLURM_JOB_NODELIST is set from them"),
    (re.compile(r"power_monitor|POWERCMDDIR|GRACE_POWER|TELEMETRY_SCRIPT"), "power and telemetry monitors",
     "not run (no access to the host); reported in the system description"),
    (re.compile(r"nvidia-smi\s+(-lgc|-pl|boost-slider)|sudo nvidia-smi"), "GPU clock or power settings",
     "not applied (containers cannot set them); the GPUs run at the cluster's settings"),
    (re.compile(r"all_reduce_perf|nccl-tests|pytorch_nccltest"), "NCCL bandwidth test before the run",
     "not run"),
    (re.compile(r"mountcheck"), "mount check against expected-mounts CSV", "not run; the plan lists every mount"),
    (re.compile(r"hang_monitor"), "hang monitor", "not run; --timeout ends a run that hangs"),
    (re.compile(r"enroot|--container-image"), "enroot/pyxis container set-up",
     "not needed: the session's containers are the implementation's image"),
    (re.compile(r"compliance_checker"), "compliance check after each run",
     "done at home once the log has come back"),
)
TASK_STEPS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\bbindpcie\b|\bBINDCMD\b"), "CPU/IB binding helper (bindpcie)",
     "runs inside the container if the image has it; the container's CPU set may refuse a binding "
     "(give --env BINDCMD= to run without it)"),
    (re.compile(r"\bnumactl\b"), "numactl binding",
     "runs inside the container; the container's CPU set may refuse a binding"),
    (re.compile(r"\bsudo\b"), "sudo", "not available to the session's user"),
    (re.compile(r"\bln\s+-\w*s\w*\s+\S+\s+\"?/[A-Za-z0-9_.-]+\"?\s*$"), "a link at the top of the file system",
     "only root may make it and a session's user is not root: the task stops there (sessions as root work in one "
     "container at most: the containers' SSH refuses root)"),
)


class UnmappableLaunchError(ValueError):
    """The scripts start the tasks in a way the project cannot give them inside a Backend.AI session."""


@dataclass(frozen=True)
class Line:
    """One logical line (continuations joined), where it starts, and how many `if` blocks enclose it."""

    path: Path
    number: int
    text: str
    depth: int

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.number}"


@dataclass(frozen=True)
class Launch:
    """How the per-task entry is started: one task per GPU (srun) or one per node (docker exec)."""

    entry: str
    arguments: tuple[str, ...]
    wrapper: tuple[str, ...]
    per_gpu: bool
    tasks_var: str | None
    fixed_tasks: int | None
    workdir: str | None
    mounts_expr: str | None
    line: Line | None


@dataclass(frozen=True)
class Mount:
    """A container path the implementation expects, with the host side as its script writes it."""

    container_path: str
    host: str
    read_only: bool
    where: str


@dataclass(frozen=True)
class Finding:
    """Something the SLURM host or the entry does that a container does differently, and what the run does."""

    where: str
    what: str
    handling: str


def logical_lines(path: Path) -> list[Line]:
    """The script's commands: continuations joined, comments and blank lines dropped, `if` depth tracked."""
    lines: list[Line] = []
    depth = 0
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        if not text or text.startswith("#"):
            continue
        closes = len(_IF_CLOSE.findall(text))
        opens = len(_IF_OPEN.findall(text))
        lines.append(Line(path, start, text, max(0, depth - (closes if not opens else 0))))
        depth = max(0, depth + opens - closes)
    return lines


def words(text: str) -> list[str]:
    """Shell words of a line, with `(`/`)` of a subshell split off (shlex keeps them glued to words)."""
    try:
        return shlex.split(text.replace("(", " ( ").replace(")", " ) "), comments=True)
    except ValueError:
        return text.split()


def _command_after_options(tokens: list[str], start: int) -> int:
    """Index of the first word after a launcher's options (srun's or docker exec's)."""
    i = start
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            takes_value = "=" not in token and token not in SRUN_FLAGS and not re.fullmatch(r"-[A-Za-z]\S+", token)
            i += 2 if takes_value else 1
        elif _ARRAY_EXPANSION.match(token):
            i += 1  # "${PYXIS_DEFAULTS[@]}" and the like: more options
        else:
            return i
    return i


def _option(tokens: list[str], names: tuple[str, ...]) -> str | None:
    for i, token in enumerate(tokens):
        for name in names:
            if token.startswith(f"{name}="):
                return token.split("=", 1)[1]
            if token == name and i + 1 < len(tokens):
                return tokens[i + 1]
            if len(name) == 2 and token.startswith(name) and len(token) > 2 and not token.startswith("--"):
                return token[2:]
    return None


def _command(tokens: list[str], root: Path) -> tuple[tuple[str, ...], str, tuple[str, ...]] | None:
    """(wrapper, entry, arguments) of a command whose words name a script of the implementation."""
    end = next((i for i, t in enumerate(tokens) if t in _COMMAND_END), len(tokens))
    command = tokens[:end]
    for i, token in enumerate(command):
        name = token.rsplit("/", 1)[-1]
        if name.endswith((".sh", ".py")) and (root / name).is_file():
            return tuple(command[:i]), token, tuple(command[i + 1:])
    return None


def _tasks_per_node(value: str | None, line: Line) -> tuple[bool, str | None, int | None]:
    if value is None:
        raise UnmappableLaunchError(f"{line.where}: `{line.text[:160]}` starts the tasks without "
                                    "--ntasks-per-node or --ntasks, so the tasks per node are unknown")
    names = re.findall(r"[A-Za-z_]\w*", value)
    gpu_names = [n for n in names if "GPU" in n.upper() and n not in ("SLURM_JOB_NUM_NODES", "SLURM_NNODES")]
    if gpu_names:
        return True, gpu_names[0], None
    if value.strip().isdigit():
        count = int(value)
        return count > 1, None, count
    raise UnmappableLaunchError(f"{line.where}: `{line.text[:160]}`: tasks per node `{value}` is neither a "
                                "number nor a GPUs-per-node variable")


def srun_launch(run_sub: Path, root: Path, entry: str = "run_and_time.sh") -> Launch | None:
    """The srun line of run.sub that starts the implementation's entry (run_and_time.sh, else the first script of
    the implementation an srun line starts) in its container."""
    lines = logical_lines(run_sub)
    preferred = [line for line in lines if entry in line.text] + [line for line in lines if entry not in line.text]
    for line in preferred:
        tokens = words(line.text)
        if "srun" not in tokens:
            continue
        at = tokens.index("srun")
        command_at = _command_after_options(tokens, at + 1)
        found = _command(tokens[command_at:], root)
        if found is None:
            continue
        options = tokens[at + 1:command_at]
        per_node = _option(options, ("--ntasks-per-node",))
        total = _option(options, ("--ntasks", "-n"))
        per_gpu, tasks_var, fixed = _tasks_per_node(per_node or total, line)
        if per_node is None and total is not None and tasks_var is None:
            raise UnmappableLaunchError(f"{line.where}: `{line.text[:160]}` gives --ntasks={total} without "
                                        "--ntasks-per-node: the tasks per node are unknown")
        wrapper, entry, arguments = found
        return Launch(entry=entry, arguments=arguments, wrapper=wrapper, per_gpu=per_gpu, tasks_var=tasks_var,
                      fixed_tasks=fixed, workdir=_option(options, ("--container-workdir",)),
                      mounts_expr=_option(options, ("--container-mounts",)), line=line)
    return None


def docker_launch(runner: Path, root: Path) -> Launch | None:
    """The `docker exec` of a run_with_docker.sh: one task per node (the entry starts its own workers)."""
    for line in logical_lines(runner):
        tokens = words(line.text)
        if "docker" not in tokens or "exec" not in tokens:
            continue
        at = tokens.index("exec")
        command_at = _command_after_options(tokens, at + 1) + 1  # the container's name comes first
        found = _command(tokens[command_at:], root)
        if found is None:
            continue
        wrapper, entry, arguments = found
        return Launch(entry=entry, arguments=arguments, wrapper=wrapper, per_gpu=False, tasks_var=None,
                      fixed_tasks=1, workdir=_option(tokens[at + 1:command_at], ("--workdir", "-w")),
                      mounts_expr=None, line=line)
    return None


def defaults(script: Path) -> str:
    """The `: "${VAR:=default}"` lines of a script, outside any `if`: what it assumes when nothing is set."""
    return "\n".join(line.text for line in logical_lines(script) if line.depth == 0 and _DEFAULT.match(line.text))


def assignments(script: Path, name: str) -> list[Line]:
    """Every `name=` / `name+=` line of a script outside any `if` (an `if` adds optional mounts)."""
    pattern = re.compile(rf"^(?:export\s+|readonly\s+|declare\s+\S+\s+)?{re.escape(name)}\+?=")
    return [line for line in logical_lines(script) if line.depth == 0 and pattern.match(line.text)]


def sources(script: Path, root: Path) -> list[Path]:
    """Files of the implementation a script sources (config_common.sh, config_mounts.sh and the like)."""
    found = []
    for line in logical_lines(script):
        command = re.match(r"^(?:source|\.)\s+(.+)$", line.text)
        name = re.search(r"([\w.-]+)[\"']?$", command.group(1)) if command else None
        if name and (root / name.group(1)).is_file():
            found.append(root / name.group(1))
    return found


def static_mounts(lines: list[Line]) -> list[Mount]:
    """HOST:CONTAINER[:ro] entries as written (before any variable is known), for people and messages."""
    mounts: dict[str, Mount] = {}
    for line in lines:
        for match in _MOUNT_ENTRY.finditer(line.text):
            host = re.sub(r"^(--volume=|-v)", "", match.group("host"))
            if not host or ("$" not in host and not host.startswith((".", "/"))):
                continue
            mounts[match.group("path")] = Mount(match.group("path"), host, match.group("opt") == "ro", line.where)
    return list(mounts.values())


def parse_mounts(text: str) -> list[tuple[str, str, bool]]:
    """(host, container path, read-only) of each entry of an evaluated mount list (commas or docker flags)."""
    entries = []
    for word in re.split(r"[,\s]+", text.strip()):
        item = re.sub(r"^(--volume=|-v)", "", word)
        if not item or ":" not in item:
            continue
        host, _, rest = item.partition(":")
        path, _, option = rest.partition(":")
        if path.startswith("/"):
            entries.append((host, path.rstrip("/") or "/", option == "ro"))
    return entries


def _scan(lines: list[Line], steps: tuple[tuple[re.Pattern[str], str, str], ...]) -> list[Finding]:
    found: dict[str, Finding] = {}
    for line in lines:
        for pattern, what, handling in steps:
            if what not in found and pattern.search(line.text):
                found[what] = Finding(line.where, what, handling)
    return list(found.values())


def host_findings(scripts: list[Path]) -> list[Finding]:
    """What the launch scripts do on the SLURM host around the tasks."""
    return _scan([line for script in scripts for line in logical_lines(script)], HOST_STEPS)


def task_findings(scripts: list[Path]) -> list[Finding]:
    """What the entry and configs do inside a task that a container may not allow."""
    return _scan([line for script in scripts for line in logical_lines(script)], TASK_STEPS)


def exported_by(script: Path) -> list[str]:
    """Names a launch script exports for itself outside any `if` (the tasks of a Backend.AI run lack them)."""
    names = []
    for line in logical_lines(script):
        match = re.match(r"^export\s+([A-Za-z_]\w*)=", line.text)
        if match and line.depth == 0 and match.group(1) not in names:
            names.append(match.group(1))
    return names
