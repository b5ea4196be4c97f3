"""Start a benchmark's training on every node of a Backend.AI cluster session, inside the image.

Backend.AI runs a batch session's startup command only in `main1`; the other containers (`sub1..subN`)
wait, reachable over SSH on port 2200 with the session's own key (the kernel runner writes
`~/.ssh/config`). This launcher turns what the session's environment says (BACKENDAI_CLUSTER_SIZE,
BACKENDAI_CLUSTER_HOSTS, BACKENDAI_CLUSTER_LOCAL_RANK) into one torchrun per node with a static
rendezvous at main1, so rank 0 and the MLPerf log stay in main1:

    python -m common.mlperf.launcher [--nproc-per-node auto|N] -- -m <training module> <args>

Subs are started over SSH, each retried until it answers (23.09 starts the command before the subs
are up). main1 then waits for every node; the first node that fails stops the others, so a dead sub
ends the run with a non-zero exit instead of a hang in a collective. Outside a cluster session (or
with one container) it is plain torchrun --standalone, or the training itself for one worker.
The `node` subcommand is what runs on a sub: torchrun that dies with its SSH connection.
Stdlib only; torch is imported just to count GPUs for `auto`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

MASTER_PORT = 29500
SSH_PORT = 2200
SESSION_KEY = "/home/config/ssh/id_cluster"
# Variables a sub's SSH login lacks but the training needs (the session's own env is not inherited).
FORWARDED_ENV_PREFIXES = ("MLPERF_", "NCCL_", "GLOO_", "TORCH_", "OMP_", "PYTHON")
STOP_GRACE_SECONDS = 15.0


class LaunchError(RuntimeError):
    """The cluster could not be brought to train (a sub that never answers, a bad environment)."""


@dataclass(frozen=True)
class Cluster:
    """This container's place in the session, from Backend.AI's BACKENDAI_CLUSTER_* variables.

    `hosts` starts with the main container (node rank 0, which writes the log), then the subs in index
    order: BACKENDAI_CLUSTER_HOSTS promises no order (26.9 lists `sub1,main1`)."""

    hosts: tuple[str, ...]
    local_rank: int

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def main_host(self) -> str:
        return self.hosts[0]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Cluster:
        size = int(environ.get("BACKENDAI_CLUSTER_SIZE", "1") or 1)
        listed = tuple(h for h in environ.get("BACKENDAI_CLUSTER_HOSTS", "").split(",") if h)
        if size <= 1:
            return cls(hosts=listed[:1] or ("localhost",), local_rank=0)
        if len(listed) != size:
            raise LaunchError(f"BACKENDAI_CLUSTER_SIZE={size} but BACKENDAI_CLUSTER_HOSTS names {len(listed)} "
                              f"hosts ({','.join(listed) or 'none'})")
        hosts = main_first(listed)
        own = environ.get("BACKENDAI_CLUSTER_HOST", "")
        if own:
            if own not in hosts:
                raise LaunchError(f"BACKENDAI_CLUSTER_HOST={own} is not among BACKENDAI_CLUSTER_HOSTS "
                                  f"({','.join(listed)})")
            return cls(hosts=hosts, local_rank=hosts.index(own))
        return cls(hosts=hosts, local_rank=int(environ.get("BACKENDAI_CLUSTER_LOCAL_RANK", "0")))


def main_first(hosts: Sequence[str]) -> tuple[str, ...]:
    """main1 first, then sub1, sub2, ... sub10 by their index; names of another scheme keep their order."""
    parsed = [re.fullmatch(r"(main|sub)(\d+)", host) for host in hosts]
    if not all(parsed):
        return tuple(hosts)
    order = sorted(zip(parsed, hosts, strict=True), key=lambda m: (m[0].group(1) != "main", int(m[0].group(2))))
    return tuple(host for _, host in order)


def visible_gpus() -> int:
    """GPUs this container sees; Backend.AI exposes only the ones the session got."""
    try:
        import torch  # noqa: PLC0415 - only to count GPUs
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def accelerator_names() -> list[str]:
    """Names of the GPUs this container sees (nvidia-smi comes with NVIDIA's container runtime)."""
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in found.stdout.splitlines() if line.strip()] if found.returncode == 0 else []


def system_name(environ: Mapping[str, str], gpus: Sequence[str]) -> str:
    """A results-folder name for what the session got: bai-2x8xH100, or bai-2xCPU without GPUs."""
    nodes = Cluster.from_environ(environ).size
    if not gpus:
        return f"bai-{nodes}xCPU"
    model = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Z]?)\b", gpus[0])
    name = model.group(1) if model else re.sub(r"[^A-Za-z0-9]+", "-", gpus[0]).strip("-")
    return f"bai-{nodes}x{len(gpus)}x{name}"


def resolve_nproc(value: str) -> int:
    """`auto`: one worker per visible GPU, or one CPU worker (gloo) where there is none."""
    if value == "auto":
        return max(1, visible_gpus())
    count = int(value)
    if count < 1:
        raise LaunchError(f"--nproc-per-node must be at least 1 or 'auto', not {value}")
    return count


def torchrun(trainer: Sequence[str], *, nproc: int, nnodes: int = 1, node_rank: int = 0,
             master_addr: str = "", master_port: int = MASTER_PORT) -> list[str]:
    """The torchrun command of one node; a single worker on a single node runs without it."""
    if nnodes == 1 and nproc == 1:
        return [sys.executable, *trainer]
    if nnodes == 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                *trainer]
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}", f"--node-rank={node_rank}",
            f"--nproc-per-node={nproc}", "--rdzv-backend=static", f"--master-addr={master_addr}",
            f"--master-port={master_port}", *trainer]


def ssh_command(host: str, remote: Sequence[str], *, connect_timeout: int = 5) -> list[str]:
    """OpenSSH to a sibling container with the session's key (also named in the kernel runner's
    ~/.ssh/config, which a user other than the image's may not read)."""
    identity = ["-i", SESSION_KEY] if os.path.exists(SESSION_KEY) else []
    return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            *identity, "-p", str(SSH_PORT), host, shlex.join(remote)]


def wait_for_ssh(host: str, timeout: float, *, interval: float = 2.0) -> None:
    """Until `ssh host true` succeeds: a sub's sshd may start after main1's command."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        probe = subprocess.run(ssh_command(host, ["true"]), capture_output=True, text=True, check=False,
                               stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            return
        last = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        if time.monotonic() >= deadline:
            raise LaunchError(f"cluster node {host} did not answer SSH on port {SSH_PORT} within "
                              f"{timeout:.0f}s (last answer: {last})")
        time.sleep(interval)


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def sub_command(cluster: Cluster, node_rank: int, trainer: Sequence[str], *, nproc: str, master_port: int,
                environ: Mapping[str, str]) -> list[str]:
    """What main1 runs over SSH on the sub of `node_rank`: this module's `node` subcommand."""
    env = [f"{k}={v}" for k, v in sorted(forwarded_env(environ).items())]
    remote = ["env", *env, sys.executable, "-m", "common.mlperf.launcher", "node",
              f"--node-rank={node_rank}", f"--nnodes={cluster.size}", f"--master-addr={cluster.main_host}",
              f"--master-port={master_port}", f"--nproc-per-node={nproc}", f"--cwd={os.getcwd()}",
              "--", *trainer]
    return ssh_command(cluster.hosts[node_rank], remote)


def exit_status(code: int) -> int:
    """A process killed by signal N reports -N; a shell would say 128+N."""
    return 128 - code if code < 0 else code


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Ask every node to stop (SIGTERM to its process group; a sub's SSH closes), then kill stragglers."""
    for proc in processes:
        if proc.poll() is None:
            if proc.stdin:
                proc.stdin.close()
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(proc.pid, signum)


def say(message: str) -> None:
    """A line for the user watching the session's output."""
    print(f"launcher: {message}", file=sys.stderr, flush=True)


def supervise(nodes: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> int:
    """Wait for every node; the first failure stops the rest. Returns the worst exit status."""
    processes = [proc for _, proc in nodes]
    failed: tuple[str, int] | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(f"{signal.Signals(signum).name}: stopping every node")
        stop(processes)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while any(proc.poll() is None for proc in processes):
            for name, proc in nodes:
                code = proc.poll()
                if code not in (None, 0) and failed is None:
                    failed = (name, exit_status(code))
                    say(f"node {name} exited with {failed[1]}; stopping the others")
                    stop(processes)
            time.sleep(0.5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    codes = [exit_status(proc.returncode) for proc in processes]
    return failed[1] if failed else max(codes)


def launch(trainer: Sequence[str], *, nproc: str = "auto", master_port: int = MASTER_PORT,
           ssh_timeout: float = 300.0, environ: Mapping[str, str] | None = None) -> int:
    """Train on every node of this session (or on this container alone); the worst exit status."""
    environ = os.environ if environ is None else environ
    cluster = Cluster.from_environ(environ)
    if cluster.size > 1 and cluster.local_rank != 0:
        raise LaunchError(f"the launcher runs in {cluster.main_host} (local rank 0), not in local rank "
                          f"{cluster.local_rank}; Backend.AI starts a batch command only there")
    nodes: list[tuple[str, subprocess.Popen[bytes]]] = []
    per_node = resolve_nproc(nproc)
    try:
        for rank in range(1, cluster.size):
            wait_for_ssh(cluster.hosts[rank], ssh_timeout)
            say(f"node {cluster.hosts[rank]} answers SSH on port {SSH_PORT}")
        if cluster.size > 1:
            say(f"world of {per_node * cluster.size} worker(s) on {cluster.size} node(s) "
                f"({', '.join(cluster.hosts)}), {per_node} per node, rendezvous at {cluster.main_host}:{master_port}")
        for rank in range(1, cluster.size):
            command = sub_command(cluster, rank, trainer, nproc=nproc, master_port=master_port, environ=environ)
            nodes.append((cluster.hosts[rank], subprocess.Popen(command, stdin=subprocess.PIPE,
                                                                start_new_session=True)))
        own = torchrun(trainer, nproc=per_node, nnodes=cluster.size, node_rank=0,
                       master_addr=cluster.main_host, master_port=master_port)
        nodes.append((cluster.main_host, subprocess.Popen(own, start_new_session=True)))
    except BaseException:
        stop([proc for _, proc in nodes])
        raise
    return supervise(nodes)


def run_node(trainer: Sequence[str], *, node_rank: int, nnodes: int, master_addr: str, master_port: int,
             nproc: str) -> int:
    """A sub's torchrun, stopped when main1 closes the SSH connection (stdin reaches EOF)."""
    command = torchrun(trainer, nproc=resolve_nproc(nproc), nnodes=nnodes, node_rank=node_rank,
                       master_addr=master_addr, master_port=master_port)
    proc = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    while proc.poll() is None:
        readable, _, _ = select.select([sys.stdin.fileno()], [], [], 0.5)
        if readable and not os.read(sys.stdin.fileno(), 4096):  # EOF: main1 or the connection is gone
            stop([proc])
    return exit_status(proc.returncode)


def run_tasks(tasks: Sequence[tuple[str, Sequence[str], Mapping[str, str]]], *, cwd: str | None = None) -> int:
    """The per-node hook for worlds started task by task instead of by torchrun (what srun does: one process
    per GPU, each with its own environment; implementations.slurm_world). Each task runs in its own process
    group; the first that fails stops the others, and all stop when main1 closes this node's connection
    (stdin reaches EOF). The worst exit status."""
    nodes: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name, command, env in tasks:
            nodes.append((name, subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                                 start_new_session=True)))
    except BaseException:
        stop([proc for _, proc in nodes])
        raise
    threading.Thread(target=_stop_at_eof, args=([proc for _, proc in nodes],), daemon=True).start()
    return supervise(nodes)


def _stop_at_eof(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    while os.read(sys.stdin.fileno(), 4096):
        pass
    stop(processes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m common.mlperf.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--nproc-per-node", default="auto", help="workers per node: a number or auto (GPUs)")
    parser.add_argument("--master-port", type=int, default=MASTER_PORT, help="rendezvous port on main1")
    parser.add_argument("--ssh-timeout", type=float, default=300.0, help="seconds to wait for each sub's SSH")
    sub = parser.add_subparsers(dest="mode")
    node = sub.add_parser("node", help="(run by the launcher on a sub over SSH)")
    node.add_argument("--node-rank", type=int, required=True)
    node.add_argument("--nnodes", type=int, required=True)
    node.add_argument("--master-addr", required=True)
    node.add_argument("--master-port", type=int, default=MASTER_PORT)
    node.add_argument("--nproc-per-node", default="auto")
    node.add_argument("--cwd", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        _parser().error("give the training after `--`, e.g. -- -m object_detection.maskrcnn.train ...")
    split = argv.index("--")
    args, trainer = _parser().parse_args(argv[:split]), argv[split + 1:]
    try:
        if args.mode == "node":
            if args.cwd:
                os.chdir(args.cwd)
            return run_node(trainer, node_rank=args.node_rank, nnodes=args.nnodes, master_addr=args.master_addr,
                            master_port=args.master_port, nproc=args.nproc_per_node)
        return launch(trainer, nproc=args.nproc_per_node, master_port=args.master_port,
                      ssh_timeout=args.ssh_timeout)
    except LaunchError as exc:
        say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
