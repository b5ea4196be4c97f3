"""`systems/<system>.json`: the MLPerf system description next to `results/`.

Every field of the MLPerf system description schema (`mlperf_logging.system_desc_checker`) is
written. What the machine or the session can tell (accelerators, host CPUs and memory, nodes,
framework versions, image, operating system) comes from `SystemFacts`; submitter, division and
availability come from the runs' log; the rest holds `PLACEHOLDER` for the submitter to fill in.
A file that exists keeps every field its owner filled in; fields read from the machine are
rewritten, and a change of accelerators or nodes is reported (the results folder of one system
name would then mix two machines). A system has one division (MLCommons' checkers read it from
the description and apply that division's rules to every run of the system): a description is
never rewritten to another division, and `home_for` gives a series of another division its own
system name. `sw_notes` says how each run flushed the page cache (from the log's `cache_clear`).

API:
- `SystemFacts(...)`: what a machine or a Backend.AI session reports (all explicit fields).
- `write_description(submission_root, system, facts) -> Written`: `Written.path`, `Written.changes`.
- `probe_local(*, submitter, division, status, image=None) -> SystemFacts`: this machine
  (/proc/cpuinfo, /proc/meminfo, nvidia-smi, the installed torch's version file; torch is not
  imported), the node count of the Backend.AI cluster session it runs in (1 outside one).
- `describe_local_run(submission_root, system, log) -> Written`: run_and_time's call: this
  machine, with submitter, division and availability from the run's log, and its cache flush.
- `home_for(results_root, system, division) -> Home`: the system name a series of that division
  goes under (`system`, else `<system>-<division>` when `system` holds another division's runs).
- `DivisionConflictError`: a description or a system name is another division's.
- `read_description(path) -> dict`: raises `SystemDescriptionError` when it is not JSON, not an
  object, or lacks a field `result_summarizer` reads.
- `SUMMARIZER_FIELDS`, `SCHEMA_FIELDS`, `PLACEHOLDER`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import write_text_atomic
from common.mlperf import launcher
from common.results import layout
from common.results.logs import RunLog

PLACEHOLDER = "TO FILL IN: not readable from the machine"
# The benchmark image a run inside a container comes from (the cluster runs set it).
IMAGE_ENV = "MLPERF_IMAGE"
# The fields system_desc_checker requires, in its order.
SCHEMA_FIELDS = (
    "submitter", "division", "status", "system_name", "number_of_nodes", "host_processors_per_node",
    "host_processor_model_name", "host_processor_core_count", "host_processor_vcpu_count",
    "host_processor_frequency", "host_processor_caches", "host_processor_interconnect", "host_memory_capacity",
    "host_storage_type", "host_storage_capacity", "host_networking", "host_networking_topology",
    "host_memory_configuration", "accelerators_per_node", "accelerator_model_name",
    "accelerator_host_interconnect", "accelerator_frequency", "accelerator_on-chip_memories",
    "accelerator_memory_configuration", "accelerator_memory_capacity", "accelerator_interconnect",
    "accelerator_interconnect_topology", "cooling", "hw_notes", "framework", "other_software_stack",
    "operating_system", "sw_notes",
)
# What result_summarizer reads from a description; a description without one is left out there.
SUMMARIZER_FIELDS = (
    "division", "status", "submitter", "system_name", "host_processor_model_name", "number_of_nodes",
    "host_processor_core_count", "host_processors_per_node", "accelerator_model_name",
    "accelerators_per_node", "framework", "hw_notes", "sw_notes",
)
_NOTES = ("hw_notes", "sw_notes")
_HARDWARE = ("number_of_nodes", "accelerators_per_node", "accelerator_model_name")
# The log's submission_status, in the words the schema of rulesets 4.0.0 on requires (older accept them).
AVAILABILITY = {
    "onprem": "Available on-premise", "cloud": "Available cloud", "preview": "Preview",
    "research": "Research, Development, or Internal (RDI)",
}
NO_ACCELERATOR = "N/A"
CACHE_NOTE_PREFIX = "Page cache:"
MLLOG = ":::MLLOG "


class SystemDescriptionError(ValueError):
    """A systems/<system>.json cannot be read as an MLPerf system description."""


class DivisionConflictError(SystemDescriptionError):
    """Runs of another division would go under a system that already has one."""


@dataclass(frozen=True)
class SystemFacts:
    submitter: str
    division: str
    status: str
    nodes: int
    host_processor_model: str
    host_processors_per_node: int
    host_processor_core_count: int
    host_processor_vcpu_count: int
    host_memory_bytes: int | None
    accelerator_model: str | None
    accelerators_per_node: int
    accelerator_memory_bytes: int | None
    frameworks: dict[str, str]
    operating_system: str
    image: str | None = None
    other_software: dict[str, str] = field(default_factory=dict)
    # How the nodes of a cluster session reached each other (common.mlperf.launcher's launch facts).
    networking: str | None = None

    def fields(self, system: str) -> dict[str, Any]:
        """The schema fields these facts fill, as MLCommons writes them (strings)."""
        accelerated = self.accelerator_model is not None and self.accelerators_per_node > 0
        return {
            "submitter": self.submitter,
            "division": self.division,
            "status": AVAILABILITY.get(self.status, self.status),
            "system_name": system,
            "number_of_nodes": str(self.nodes),
            "host_processors_per_node": str(self.host_processors_per_node),
            "host_processor_model_name": self.host_processor_model,
            "host_processor_core_count": str(self.host_processor_core_count),
            "host_processor_vcpu_count": str(self.host_processor_vcpu_count),
            "host_memory_capacity": _gigabytes(self.host_memory_bytes),
            "accelerators_per_node": str(self.accelerators_per_node if accelerated else 0),
            "accelerator_model_name": self.accelerator_model if accelerated else NO_ACCELERATOR,
            "accelerator_memory_capacity": _gigabytes(self.accelerator_memory_bytes) if accelerated else NO_ACCELERATOR,
            "framework": ", ".join(f"{name} {version}" for name, version in self.frameworks.items()) or PLACEHOLDER,
            "other_software_stack": {"image": self.image or "none (run outside a container image)",
                                     **self.other_software},
            "operating_system": self.operating_system,
            **({"host_networking": self.networking} if self.networking else {}),
        }


@dataclass(frozen=True)
class Written:
    path: Path
    changes: list[str]


def _gigabytes(size: int | None) -> str:
    return f"{size / 2**30:.0f} GB" if size else PLACEHOLDER


def read_description(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SystemDescriptionError(f"{path}: not JSON ({error})") from error
    except (OSError, UnicodeDecodeError) as error:
        raise SystemDescriptionError(f"{path}: unreadable ({error})") from error
    if not isinstance(content, dict):
        raise SystemDescriptionError(f"{path}: a JSON {type(content).__name__}, not an object of fields")
    missing = [f for f in SUMMARIZER_FIELDS if f not in content]
    if missing:
        raise SystemDescriptionError(f"{path}: no {', '.join(missing)} field(s), which result_summarizer reads")
    return content


def write_description(submission_root: Path, system: str, facts: SystemFacts) -> Written:
    return write_fields(submission_root, system, facts.fields(system))


def write_fields(submission_root: Path, system: str, probed: dict[str, Any]) -> Written:
    """Write what was probed (here, or in a cluster session) over an existing description: hardware
    changes are reported, and what the owner filled in stays where the probe knows nothing."""
    path = submission_root / "systems" / f"{system}.json"
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SystemDescriptionError(f"{path}: not JSON ({error}); fix or remove it: not rewritten") from error
        if not isinstance(previous, dict):
            raise SystemDescriptionError(f"{path}: not a JSON object; fix or remove it, it was not rewritten")
    if previous.get("division") not in (None, PLACEHOLDER, probed.get("division")):
        raise DivisionConflictError(
            f"{path} describes {_a(previous['division'])}-division system; {_a(probed.get('division'))}-division "
            f"run is not described there (one division per system: give it another system name, e.g. "
            f"{system}-{probed.get('division')}, or remove the file if the runs it described are gone)")
    changes = [f"{key}: {previous[key]} -> {probed[key]}" for key in _HARDWARE
               if key in previous and previous[key] != probed[key]]
    description = {}
    if "sw_notes" in probed:
        probed = {**probed, "sw_notes": _with_note(str(previous.get("sw_notes", "")), probed["sw_notes"])}
    for key in SCHEMA_FIELDS:
        value = probed.get(key, "" if key in _NOTES else PLACEHOLDER)
        # What the owner filled in stays unless the machine now says something.
        description[key] = previous[key] if value in (PLACEHOLDER, "") and key in previous else value
    description.update({k: v for k, v in previous.items() if k not in SCHEMA_FIELDS})
    write_text_atomic(path, json.dumps(description, indent=4) + "\n")
    return Written(path, changes)


def _cpuinfo() -> tuple[str, int, int]:
    """Model, sockets and cores per socket, as /proc/cpuinfo lists them."""
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace") if Path("/proc/cpuinfo").exists() else ""
    models = re.findall(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    sockets = set(re.findall(r"^physical id\s*:\s*(\d+)$", text, re.MULTILINE))
    cores = re.findall(r"^cpu cores\s*:\s*(\d+)$", text, re.MULTILINE)
    logical = os.cpu_count() or 1
    return (models[0].strip() if models else platform.processor() or PLACEHOLDER, max(len(sockets), 1),
            int(cores[0]) if cores else logical)


def _memory_bytes() -> int | None:
    meminfo = Path("/proc/meminfo")
    match = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.MULTILINE) if meminfo.exists() else None
    return int(match.group(1)) * 1024 if match else None


def _gpus() -> list[tuple[str, int]]:
    """(name, memory in bytes) of each GPU nvidia-smi lists; none without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.rsplit(",", 1) for line in out.splitlines() if "," in line]
    return [(name.strip(), int(mib.strip()) * 2**20) for name, mib in rows if mib.strip().isdigit()]


def _frameworks() -> dict[str, str]:
    """PyTorch and its CUDA as the installed torch records them, without importing torch."""
    try:
        version = importlib.metadata.version("torch")
        files = importlib.metadata.files("torch") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    found = {"PyTorch": version}
    version_file = next((f for f in files if str(f).replace("\\", "/") == "torch/version.py"), None)
    if version_file is not None:
        match = re.search(r"^cuda\s*(?::[^=]*)?=\s*'([^']+)'", Path(version_file.locate()).read_text(), re.MULTILINE)
        found["CUDA"] = match.group(1) if match else "none (CPU build)"
    return found


def _operating_system() -> str:
    release = Path("/etc/os-release")
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', release.read_text(), re.MULTILINE) if release.exists() else None
    return f"{match.group(1) if match else platform.system()} (kernel {platform.release()})"


def probe_local(*, submitter: str, division: str, status: str, image: str | None = None) -> SystemFacts:
    model, sockets, cores = _cpuinfo()
    gpus = _gpus()
    other = {"python": platform.python_version()}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        other["mlperf_logging"] = importlib.metadata.version("mlperf-logging")
    return SystemFacts(
        submitter=submitter, division=division, status=status, nodes=launcher.Cluster.from_environ(os.environ).size,
        host_processor_model=model, host_processors_per_node=sockets, host_processor_core_count=cores,
        host_processor_vcpu_count=os.cpu_count() or 1, host_memory_bytes=_memory_bytes(),
        accelerator_model=" / ".join(sorted({name for name, _ in gpus})) or None, accelerators_per_node=len(gpus),
        accelerator_memory_bytes=gpus[0][1] if gpus else None, frameworks=_frameworks(),
        operating_system=_operating_system(), image=image, other_software=other,
    )


def networking(launch: dict[str, Any]) -> str | None:
    """The launch facts of a run across containers, in the words of the schema's host_networking."""
    nodes = launch.get("nodes") or []
    if len(nodes) < 2:
        return None
    text = f"Backend.AI cluster session of {len(nodes)} containers ({', '.join(nodes)})"
    if launch.get("interface"):
        text += f", over {launch['interface']} (the interface towards {nodes[0]})"
    if launch.get("nccl_transport"):
        text += f"; NCCL transport: {launch['nccl_transport']}"
    return text


def describe_local_run(submission_root: Path, system: str, log: RunLog,
                       launch: dict[str, Any] | None = None) -> Written:
    """This machine's description; inside a benchmark image (a cluster session) MLPERF_IMAGE names it, and
    `launch` (the launcher's facts) says how its containers reached each other."""
    facts = probe_local(submitter=log.submission.get("org", PLACEHOLDER),
                        division=log.submission.get("division", PLACEHOLDER),
                        status=log.submission.get("status", PLACEHOLDER), image=os.environ.get(IMAGE_ENV))
    if launch:
        facts = dataclasses.replace(facts, networking=networking(launch))
    return write_fields(submission_root, system, {**facts.fields(system), "sw_notes": cache_note(log)})


def _a(division: Any) -> str:
    return f"{'an' if str(division)[:1] in 'aeiou' else 'a'} {division}"


def _with_note(notes: str, note: str) -> str:
    """The owner's notes with our note on the cache flush in place of the one written before."""
    kept = [part for part in notes.split("; ") if part and not part.startswith(CACHE_NOTE_PREFIX)]
    return "; ".join([*kept, note])


def cache_note(log: RunLog) -> str:
    """How the run flushed the page cache before run_start, in words (from its cache_clear line)."""
    if log.cache_clear is None:
        return f"{CACHE_NOTE_PREFIX} not logged"
    done, metadata = log.cache_clear
    method = metadata.get("method")
    if done is True and method == "drop_caches":
        return f"{CACHE_NOTE_PREFIX} each run drops the whole page cache (/proc/sys/vm/drop_caches) before run_start"
    if done is True and method == "fadvise":
        return (f"{CACHE_NOTE_PREFIX} each run evicts every dataset file's pages (sync, then "
                f"posix_fadvise POSIX_FADV_DONTNEED; no root needed) before run_start")
    return f"{CACHE_NOTE_PREFIX} not flushed ({metadata.get('reason', 'cache_clear false')})"


@dataclass(frozen=True)
class Home:
    system: str
    message: str | None = None  # why it is not the name asked for


def _logged_division(path: Path) -> str | None:
    """The submission_division of a log, read up to that line."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"submission_division"' in line and MLLOG in line:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    return str(json.loads(line[line.index(MLLOG) + len(MLLOG):])["value"])
    return None


def divisions_under(results_root: Path, system: str) -> dict[str, set[str]]:
    """division -> the benchmarks whose logs under results/<system>/ (finished or not) say it."""
    found: dict[str, set[str]] = {}
    for log in sorted(results_root.glob(f"{glob.escape(system)}/*/result_*.txt*")):
        division = _logged_division(log)
        if division is not None:
            found.setdefault(division, set()).add(log.parent.name)
    return found


def _conflict(results_root: Path, system: str, division: str) -> str | None:
    others = {d: b for d, b in divisions_under(results_root, system).items() if d != division}
    if others:
        held = "; ".join(f"{d}-division {', '.join(sorted(b))} runs" for d, b in sorted(others.items()))
        return f"{results_root / system} holds {held}"
    path = layout.submission_root(results_root) / "systems" / f"{system}.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no description, or one that is not JSON
        described = json.loads(path.read_text(encoding="utf-8")).get("division")
        if described not in (None, PLACEHOLDER, division):
            return f"{path} describes {_a(described)}-division system"
    return None


def home_for(results_root: Path, system: str, division: str) -> Home:
    """`system` when it holds no other division's runs or description, else `<system>-<division>`; raises
    DivisionConflictError when that name is another division's too."""
    conflict = _conflict(results_root, system, division)
    if conflict is None:
        return Home(system)
    split = f"{system}-{division}"
    second = _conflict(results_root, split, division)
    if second is not None:
        raise DivisionConflictError(f"{conflict}, and {second}: one division per system; choose another --system "
                                    f"for these {division}-division runs")
    return Home(split, f"{conflict}; these {division}-division runs go under system {split} "
                       "(one division per system)")
