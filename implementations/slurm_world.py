"""SLURM's world for an implementation's tasks, inside a Backend.AI cluster session (runs in the image).

`run` is the session's startup command in main1. It reads the plan (MLPERF_IMPL_SPEC, written by
implementations.plan), starts `node` in every container (the subs over SSH with the session's key, main1's
locally; common.mlperf.launcher's Cluster, ssh_command and supervise), copies their output to the console and
the `:::MLLOG` lines into the MLPerf log (as MLCommons' result files keep them), and stops every node on the
first failure. At the end it renames the log from `.partial`, writes the system description with what the
SLURM host would have done and this run did not, and prints a RESULT line.

`node` sources the chosen config in its container (bash, implementations.shell), evicts the data mounts' files
from the page cache and logs `cache_clear` (run.sub's drop of the host's cache, done the way a container can),
and starts one task per GPU with the environment srun gives (implementations.world) through the launcher's
per-node hook.

Stdlib only: the image's own Python runs it, from /opt/mlperf-bai; 3.10 or newer, as the shared modules it
imports need (common.mlperf.launcher, common.results).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from common.mlperf import launcher, results
from common.results import layout, systems
from common.results.logs import read_log
from implementations import shell, world

SPEC_ENV = "MLPERF_IMPL_SPEC"
LAUNCHER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLLOG = b":::MLLOG"
BOOTSTRAP = "/opt/container/bootstrap.sh"


def say(message: str) -> None:
    launcher.say(message)


def evict(roots: list[Path]) -> tuple[int, int, list[str]]:
    """Evict every file under `roots` from the page cache (posix_fadvise DONTNEED), which any user may do for
    files it can read: a container's stand-in for the host's cache drop. (files, bytes, failures)."""
    files = size = 0
    failures: list[str] = []
    for root in roots:
        if not os.path.exists(root):
            failures.append(f"{root}: no such file or directory")
        paths = [str(root)] if os.path.isfile(root) else [
            os.path.join(folder, name) for folder, _, names in os.walk(root, followlinks=True) for name in names]
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as error:
                failures.append(f"{path}: {error.strerror}")
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                files += 1
                size += os.fstat(fd).st_size
            except OSError as error:
                failures.append(f"{path}: {error.strerror}")
            finally:
                os.close(fd)
    return files, size, failures


def mllog_line(key: str, value: Any, **metadata: Any) -> str:
    """One MLPerf log line as mlperf_logging writes it (the launcher logs what run.sub logs itself)."""
    record = {"namespace": "", "time_ms": int(time.time() * 1000), "event_type": "POINT_IN_TIME", "key": key,
              "value": value, "metadata": {"file": "implementations/slurm_world.py", "lineno": 0, **metadata}}
    return ":::MLLOG " + json.dumps(record)


def node_command(spec: dict[str, Any], node_rank: int, hosts: Sequence[str]) -> list[str]:
    """`node` on one container, run from the launcher's folder with the image's Python."""
    return [sys.executable, "-m", "implementations.slurm_world", "node", f"--node-rank={node_rank}",
            f"--hosts={','.join(hosts)}", f"--spec={json.dumps(spec)}"]


# The image's own search paths: the same in every container of the session, and what an SSH login may lack.
IMAGE_PATHS = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH")


def remote_command(spec: dict[str, Any], node_rank: int, hosts: Sequence[str]) -> list[str]:
    """What main1 runs over SSH on a sub: `node` in the launcher's folder, with the forwarded environment and the
    image's search paths (an implementation finds `python` and its libraries through them)."""
    forwarded = {**{k: os.environ[k] for k in IMAGE_PATHS if k in os.environ}, **launcher.forwarded_env(os.environ)}
    env = [f"{k}={v}" for k, v in sorted(forwarded.items()) if k != SPEC_ENV]
    script = f'cd "{LAUNCHER_DIR}" && exec "$0" "$@"'
    return ["env", *env, "sh", "-c", script, *node_command(spec, node_rank, hosts)]


def _copy_output(stream: BinaryIO, log: BinaryIO, lock: threading.Lock) -> None:
    """A node's output to the console, its MLPerf lines (from `:::MLLOG` on) into the log."""
    for line in iter(stream.readline, b""):
        with lock:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            if MLLOG in line:
                log.write(line[line.index(MLLOG):].rstrip(b"\r\n") + b"\n")
                log.flush()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %I:%M:%S %p")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def describe(results_root: Path, system: str, log_path: Path, spec: dict[str, Any]) -> None:
    """systems/<system>.json beside the results, with the SLURM host's steps this run did not do."""
    try:
        log = read_log(log_path)
        facts = systems.probe_local(submitter=log.submission.get("org", systems.PLACEHOLDER),
                                    division=log.submission.get("division", systems.PLACEHOLDER),
                                    status=log.submission.get("status", systems.PLACEHOLDER),
                                    image=os.environ.get(systems.IMAGE_ENV))
        notes = {"launch": "Backend.AI cluster session, SLURM's task environment (implementations.slurm_world)",
                 **{f"not_done_{i}": text for i, text in enumerate(spec.get("not_done", []), start=1)}}
        facts = dataclasses.replace(facts, other_software={**facts.other_software, **notes})
        written = systems.write_description(layout.submission_root(results_root), system, facts)
    except (OSError, ValueError) as error:
        say(f"no system description: {error}")
        return
    print(f"System description: {written.path}", flush=True)


def run(spec: dict[str, Any], *, ssh_timeout: float = 300.0) -> int:
    """main1: every node's tasks as one world; the MLPerf log and the RESULT line of the run."""
    cluster = launcher.Cluster.from_environ(os.environ, launcher.read_port_map())
    if cluster.size > 1 and cluster.local_rank != 0:
        raise launcher.LaunchError(f"the launcher runs in {cluster.main_host}, not in local rank {cluster.local_rank}")
    hosts = cluster.hosts
    system = spec["system"]
    if system == "auto":
        system = launcher.system_name(os.environ, launcher.accelerator_names())
    results_root = Path(spec["results"])
    for folder in spec.get("mkdirs", []):
        Path(folder).mkdir(parents=True, exist_ok=True)
    final = results.next_result_path(results_root, system, spec["benchmark"])
    partial = final.with_name(final.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    tasks = spec["tasks_per_node"]
    say(f"world of {tasks * len(hosts)} task(s) on {len(hosts)} node(s) ({', '.join(hosts)}), {tasks} per node, "
        f"rendezvous at {hosts[0]}:{spec['master_port']}; running `{' '.join(spec['command'])}` in {spec['workdir']}")
    for step in spec.get("not_done", []):
        say(f"not done by Backend.AI: {step}")
    start = datetime.now()
    started = time.monotonic()
    nodes: list[tuple[str, subprocess.Popen[bytes]]] = []
    threads: list[threading.Thread] = []
    lock = threading.Lock()
    with partial.open("ab") as log:
        try:
            for rank in range(1, len(hosts)):
                launcher.wait_for_ssh(cluster.endpoint(rank), ssh_timeout)
                say(f"node {hosts[rank]} answers SSH on port {launcher.SSH_PORT}")
            print(f"STARTING TIMING RUN AT {_stamp(start)}", flush=True)
            for rank in range(len(hosts)):
                command = (launcher.ssh_command(cluster.endpoint(rank), remote_command(spec, rank, hosts)) if rank
                           else node_command(spec, 0, hosts))
                proc = subprocess.Popen(command, cwd=LAUNCHER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                nodes.append((hosts[rank], proc))
                thread = threading.Thread(target=_copy_output, args=(proc.stdout, log, lock), daemon=True)
                thread.start()
                threads.append(thread)
        except BaseException:
            launcher.stop([proc for _, proc in nodes])
            raise
        code = launcher.supervise(nodes)
        for _, proc in nodes:
            if proc.stdin:
                proc.stdin.close()
        for thread in threads:
            thread.join(timeout=30)
    seconds = round(time.monotonic() - started)
    print(f"ENDING TIMING RUN AT {_stamp(datetime.now())}", flush=True)
    if partial.stat().st_size:
        partial.replace(final)
        print(f"MLPerf log: {final}", flush=True)
        describe(results_root, system, final, spec)
    else:
        say(f"the tasks wrote no {MLLOG.decode()} line; no MLPerf log")
        partial.unlink()
    print(f"RESULT,{spec['benchmark'].upper()},{spec['seed']},{seconds},{_user()},{_stamp(start)}", flush=True)
    return code


def run_node(spec: dict[str, Any], node_rank: int, hosts: Sequence[str]) -> int:
    """One container's tasks, with SLURM's environment on top of the sourced config."""
    the_world = world.World(tuple(hosts), spec["tasks_per_node"], spec["master_port"], spec["job_id"],
                            job_name=spec["job_name"], submit_dir=spec["workdir"])
    host = hosts[node_rank]
    for path, target in spec.get("links", []):
        if os.path.realpath(path) != os.path.realpath(target):
            say(f"{host}: {path} is not linked to {target}: the image's {BOOTSTRAP} did not make the run's links "
                "(an image not built by impl.import or impl.convert?)")
            return 1
    try:
        base = {**os.environ, **launcher.container_environ(), **launcher.forwarded_env(os.environ)}
        base.update(launcher.network_env(hosts[0], base) if len(hosts) > 1 else {})
        sourced = shell.source_config(Path(spec["config"]), base, cwd=Path(spec["workdir"]))
    except (shell.ConfigError, OSError) as error:
        say(f"{host}: {error}")
        return 1
    files, size, failures = evict([Path(p) for p in spec.get("evict", [])])
    for failure in failures[:5]:
        say(f"{host}: not evicted from the page cache: {failure}")
    say(f"{host}: evicted {files} data file(s) ({size / 1e9:.2f} GB) from the page cache")
    print(mllog_line("cache_clear", not failures, node=host), flush=True)
    tasks = []
    for task in world.node_tasks(the_world, node_rank):
        env = {**sourced.environ, **spec.get("env", {}), **task.env, "SEED": str(spec["seed"])}
        tasks.append((f"{host}/rank{task.rank}", spec["command"], env))
    return launcher.run_tasks(tasks, cwd=spec["workdir"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m implementations.slurm_world", description=__doc__.splitlines()[0])
    parser.add_argument("--ssh-timeout", type=float, default=300.0, help="seconds to wait for each sub's SSH")
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("run", help=f"main1: the whole run (the plan in ${SPEC_ENV})")
    node = sub.add_parser("node", help="(started by `run` on every container)")
    node.add_argument("--node-rank", type=int, required=True)
    node.add_argument("--hosts", required=True)
    node.add_argument("--spec", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.mode == "node":
            return run_node(json.loads(args.spec), args.node_rank, args.hosts.split(","))
        if SPEC_ENV not in os.environ:
            say(f"{SPEC_ENV} is not set: `run` is the session's startup command that impl.run writes")
            return 2
        return run(json.loads(os.environ[SPEC_ENV]), ssh_timeout=args.ssh_timeout)
    except launcher.LaunchError as error:
        say(str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
