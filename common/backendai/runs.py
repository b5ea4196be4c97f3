"""MLPerf runs as Backend.AI batch sessions: one session per run, results brought home.

Each run is its own session of the benchmark image (so a crashed or timed-out run costs only itself,
and each log comes home as soon as its run ends): the dataset folder and a results folder mounted,
the benchmark's own `run_and_time` as the startup command, `--nodes K` as a cluster session whose
containers the in-image launcher (common.mlperf.launcher) turns into one torchrun per node. The run
writes its MLPerf log into `<results folder>/<session>/<system>/<benchmark>/`; the log is then
downloaded into `results/<system>/<benchmark>/result_<i>.txt` exactly as a local run writes it (a log
of a run that did not finish keeps its `.partial` suffix), the compliance verdict and the RESULT line
are printed, and the session's exit status is returned.
"""

from __future__ import annotations

import collections
import random
import re
import shlex
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.backendai import client as bai_client
from common.backendai.benchmark import ClusterBenchmark, NodeResources
from common.backendai.errors import (
    BackendAIError,
    BatchInterruptedError,
    BatchTimeoutError,
    SessionPendingError,
    SessionPreemptedError,
)
from common.mlperf import compliance, results
from common.results import layout, projection, summary, systems

MOUNT_ROOT = "/home/work"
# The run's console output, kept beside its log in the results folder (and read from there while it runs).
OUTPUT_FILE = "output.txt"
# Lines of output a run keeps in memory to find its RESULT line.
OUTPUT_TAIL = 2000
# Exit statuses of a run that did not end on its own (as timeout(1) and shells report them).
TIMED_OUT = 124
INTERRUPTED = 130


@dataclass(frozen=True)
class ClusterRun:
    """A series of runs of one benchmark on the cluster."""

    benchmark: ClusterBenchmark
    image: str
    data_vfolder: str
    results_vfolder: str = "mlperf-results"
    nodes: int = 1
    cluster_mode: str = "single-node"
    resources: NodeResources = field(default_factory=NodeResources)
    runs: int = 1
    seed: int | None = None
    system: str | None = None
    sample: bool = False
    timeout: float = 4 * 3600.0
    start_timeout: float = 600.0
    train_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    results_dir: Path = Path("results")
    compliance: bool = True
    resource_group: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    seed: int
    session: str
    exit_code: int
    log: Path | None
    result_line: str | None
    reason: str = ""


def session_name(benchmark: str) -> str:
    return f"mlperf-{benchmark}-{uuid.uuid4().hex[:10]}"


def startup_command(spec: ClusterRun, *, seed: int, session: str) -> str:
    """The benchmark's run_and_time inside the session: one run, its log in the results folder."""
    args = ["python", "-m", spec.benchmark.run_module, "--data-dir", f"{MOUNT_ROOT}/{spec.data_vfolder}",
            "--results-dir", f"{MOUNT_ROOT}/{spec.results_vfolder}/{session}", "--seed", str(seed), "--runs", "1",
            "--nproc-per-node", "auto", "--system", spec.system or "auto",
            *(["--sample"] if spec.sample else []), *(["--no-compliance"] if not spec.compliance else []),
            *spec.train_args]
    return shlex.join(args)


def batch_job(spec: ClusterRun, *, seed: int, session: str) -> bai_client.BatchJob:
    return bai_client.BatchJob(
        image=spec.image, command=startup_command(spec, seed=seed, session=session),
        resources=spec.resources.slots(), shmem=spec.resources.shmem,
        env={"MLPERF_SYSTEM": spec.system or "auto", systems.IMAGE_ENV: spec.image, "PYTHONUNBUFFERED": "1",
             **spec.env},
        mounts={spec.data_vfolder: None, spec.results_vfolder: None}, read_only={spec.data_vfolder},
        name=session, timeout=spec.timeout,
        cluster_size=spec.nodes, cluster_mode=spec.cluster_mode, start_timeout=spec.start_timeout,
        output_file=(spec.results_vfolder, f"{session}/{OUTPUT_FILE}"), resource_group=spec.resource_group)


# Builds a run's batch session from the series' spec, the run's seed and its session name.
JobBuilder = Callable[..., bai_client.BatchJob]


def check_folders(spec: ClusterRun, config: bai_client.APIConfig | None) -> None:
    """The dataset folder must exist (a run never creates it empty); the results folder is made."""
    names = bai_client.vfolder_names(config)
    if spec.data_vfolder not in names:
        raise BackendAIError(
            f"virtual folder {spec.data_vfolder} does not exist on this cluster; prepare the dataset into it "
            f"with `invoke {spec.benchmark.name}.prepare --on-cluster --vfolder {spec.data_vfolder} ...` "
            f"(or --upload DIR)")
    if spec.results_vfolder not in names:
        bai_client.ensure_vfolder(spec.results_vfolder, config=config)


def bring_home(spec: ClusterRun, session: str, config: bai_client.APIConfig | None,
               agents: Sequence[str] = ()) -> Path | None:
    """The run's MLPerf log from the results folder into results/<system>/<benchmark>/ (None: none written),
    under the system its log names: containers that shared an agent show in the description, not the name."""
    try:
        tree = bai_client.list_tree(spec.results_vfolder, session, config=config)
    except BackendAIError:
        return None
    benchmark = re.escape(spec.benchmark.name)
    # a probe's log (run_and_time --probe) is probe_<i>.txt, and stays so at home
    pattern = re.compile(rf"^{re.escape(session)}/([^/]+)/{benchmark}/(result|probe)_\d+\.txt(\.partial)?$")
    logs = sorted(path for path in tree if pattern.match(path))
    if not logs:
        return None
    remote = logs[0]
    system, kind, partial = pattern.match(remote).groups()  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="mlperf-bai-") as scratch:
        fetched = bai_client.download(spec.results_vfolder, [remote], Path(scratch), config=config)[0]
        final = results.next_result_path(spec.results_dir, system, spec.benchmark.name, kind)
        target = final.with_name(final.name + ".partial") if partial else final
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(fetched), target.with_name(target.name + ".tmp"))
        target.with_name(target.name + ".tmp").replace(target)
    bring_description_home(spec, system, config, agents)
    return target


def bring_description_home(spec: ClusterRun, system: str, config: bai_client.APIConfig | None,
                           agents: Sequence[str] = ()) -> None:
    """systems/<system>.json as the session probed it (nodes, GPUs, CPUs, image), merged into the local one,
    with the agents its containers ran on."""
    remote = f"systems/{system}.json"
    try:
        if remote not in bai_client.list_tree(spec.results_vfolder, "systems", config=config):
            return
        with tempfile.TemporaryDirectory(prefix="mlperf-bai-") as scratch:
            fields = systems.read_description(
                bai_client.download(spec.results_vfolder, [remote], Path(scratch), config=config)[0])
        if agents:
            fields = {**fields, **placement_fields(fields, system, spec.nodes, agents)}
        written = systems.write_fields(layout.submission_root(spec.results_dir), system, fields)
    except (BackendAIError, systems.SystemDescriptionError) as error:
        print(f"system description of {system} not brought home: {error}", file=sys.stderr, flush=True)
        return
    print(f"System description: {written.path}", flush=True)


def placement_fields(fields: Mapping[str, object], system: str, containers: int,
                     agents: Sequence[str]) -> dict[str, str]:
    """Where the containers ran: the agents in hw_notes, and the node count they make."""
    nodes = len(set(agents))
    note = f"Backend.AI agents: {', '.join(agents)} ({containers} container(s) on {nodes} agent(s))"
    previous = str(fields.get("hw_notes") or "")
    notes = note if not previous or previous.startswith(systems.PLACEHOLDER) else f"{previous}; {note}"
    placed = {"system_name": system, "hw_notes": notes, "number_of_nodes": str(min(nodes, containers))}
    if nodes < containers and str(fields.get("accelerators_per_node", "0")).isdigit():
        placed["accelerators_per_node"] = str(int(str(fields["accelerators_per_node"])) * containers // nodes)
    return placed


def run_once(spec: ClusterRun, *, seed: int, config: bai_client.APIConfig | None,
             say: Callable[[str], None], make_job: JobBuilder = batch_job) -> RunOutcome:
    """One session; whatever ends it, its log is brought home and no session is left behind."""
    session = session_name(spec.benchmark.name)
    job = make_job(spec, seed=seed, session=session)
    say(f"[{session}] {spec.image}: {spec.nodes} node(s) x {spec.resources.slots()}, seed {seed}")
    output: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL)

    def on_output(line: str) -> None:
        output.append(line)
        print(line, flush=True)

    reason = ""
    agents: tuple[str, ...] = ()
    try:
        result = bai_client.run_batch(job, config=config, on_event=lambda e: say(f"[{session}] {e}"),
                                      on_output=on_output)
        exit_code, agents = result.exit_code, result.agents
        if spec.cluster_mode == "multi-node" and 0 < len(set(agents)) < spec.nodes:
            say(f"[{session}] asked for {spec.nodes} nodes in multi-node mode, but the {spec.nodes} containers ran "
                f"on {len(set(agents))} agent(s) ({', '.join(agents)}): the system is named by what it got")
        if exit_code == -2:
            exit_code, reason = TIMED_OUT, "timed out (the server's batch timeout)"
    except BatchTimeoutError as exc:
        exit_code, reason = TIMED_OUT, str(exc)
    except (SessionPendingError, SessionPreemptedError) as exc:
        exit_code, reason = 1, str(exc)
    except BatchInterruptedError as exc:
        exit_code, reason = INTERRUPTED, str(exc)
    log = bring_home(spec, session, config, agents)
    result_line = next((line for line in reversed(output) if line.startswith(f"RESULT,{spec.benchmark.result_name},")),
                       None)
    return RunOutcome(seed=seed, session=session, exit_code=exit_code, log=log, result_line=result_line,
                      reason=reason)


def report(spec: ClusterRun, outcome: RunOutcome, say: Callable[[str], None]) -> None:
    if outcome.reason:
        say(f"[{outcome.session}] {outcome.reason}")
    if outcome.log is None:
        say(f"[{outcome.session}] the run wrote no MLPerf log to {spec.results_vfolder}/{outcome.session}/")
    elif outcome.log.name.endswith(".partial"):
        say(f"partial MLPerf log (the run did not finish): {outcome.log}")
    else:
        print(f"MLPerf log: {outcome.log}", flush=True)
        if spec.compliance:
            try:
                print(compliance.check_log(outcome.log, spec.benchmark.ruleset).summary(), flush=True)
            except compliance.ComplianceCheckerError as error:
                print(f"compliance ({spec.benchmark.ruleset}): no verdict: {error}", flush=True)
    if outcome.result_line:
        print(outcome.result_line, flush=True)
    say(f"[{outcome.session}] exit code {outcome.exit_code}")


def run_series(spec: ClusterRun, config: bai_client.APIConfig | None = None,
               say: Callable[[str], None] | None = None, make_job: JobBuilder | None = None) -> int:
    """`spec.runs` sessions one after another; the first non-zero exit status, else 0. `make_job` builds each
    session (default: the project's benchmark image and run_and_time; implementations/cluster.py: a published
    implementation's image and launcher)."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    bai_client.check_before_start(batch_job(spec, seed=0, session="preflight"), config, say)
    check_folders(spec, config)
    first_seed = spec.seed if spec.seed is not None else random.SystemRandom().randint(0, 2**31 - 1)
    first_failure = 0
    systems: set[str] = set()
    probes: list[Path] = []
    for offset in range(spec.runs):
        outcome = run_once(spec, seed=first_seed + offset, config=config, say=say, make_job=make_job or batch_job)
        report(spec, outcome, say)
        if outcome.log is not None and outcome.log.name.startswith(f"{results.PROBE}_"):
            probes.append(outcome.log)
        elif outcome.log is not None:
            systems.add(outcome.log.parent.parent.name)
        first_failure = first_failure or outcome.exit_code
        if outcome.exit_code == INTERRUPTED:
            say(f"interrupted: stopping after run {offset + 1} of {spec.runs}")
            break
    folders = [layout.project_folder(spec.results_dir, system, spec.benchmark.name) for system in sorted(systems)]
    for result in summary.summarize_folders(folders, ruleset=spec.benchmark.ruleset).results:
        print(summary.headline(result), flush=True)
    for system in sorted({probe.parent.parent.name for probe in probes}):
        folder = layout.project_folder(spec.results_dir, system, spec.benchmark.name)
        print(projection.render_text([projection.project_files(
            folder, [p for p in probes if p.parent.parent.name == system])]), flush=True)
    return first_failure
