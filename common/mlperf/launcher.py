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
The `node` subcommand is what runs on a sub: torchrun that dies with its SSH connection, in the sub
container's own environment (an SSH login gets a bare one: no image PATH or LD_LIBRARY_PATH).

Across agents (multi-node mode) every container has the session's overlay interface and a second one
(docker_gwbridge, the same subnet on every host, the default route): NCCL or gloo that picks the second
hangs. Each node therefore sets NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME to its interface on main1's network
(unless the user set them), and what was chosen is written to MLPERF_LAUNCH_FACTS for the system
description. Where Backend.AI gives a port map (/home/config/ssh/port-mapping.json) its addresses and SSH
ports are used; a host-network resource group keys that map by `node-<kernel id>` while
BACKENDAI_CLUSTER_HOSTS names main1, sub1 (a Backend.AI defect): that is refused at once, naming it.
Stdlib only; torch is imported just to count GPUs for `auto`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

MASTER_PORT = 29500
SSH_PORT = 2200
SESSION_KEY = "/home/config/ssh/id_cluster"
PORT_MAP = "/home/config/ssh/port-mapping.json"
# main1's settings for the training that every node's tasks get (the rest comes from each container).
FORWARDED_ENV_PREFIXES = ("MLPERF_", "NCCL_", "GLOO_", "TORCH_", "OMP_", "PYTHON")
# The container's own environment: that of its first process (the kernel runner's).
CONTAINER_ENVIRON = "/proc/1/environ"
FACTS_ENV = "MLPERF_LAUNCH_FACTS"
HOST_NETWORK_DEFECT = (
    "this session runs in a host-network resource group: Backend.AI keys its SSH port map by node-<kernel id> "
    "while BACKENDAI_CLUSTER_HOSTS names {hosts}, and each container's sshd listens on another port than the map "
    "says (manager sokovan/scheduler/launcher/launcher.py vs agent docker/agent.py, 26.9.6 and upstream main), "
    "so its containers cannot reach each other. Run with one container per session there, or in a resource "
    "group without host networking")
STOP_GRACE_SECONDS = 15.0
SIOCGIFADDR, SIOCGIFNETMASK = 0x8915, 0x891B


class LaunchError(RuntimeError):
    """The cluster could not be brought to train (a sub that never answers, a bad environment)."""


@dataclass(frozen=True)
class Cluster:
    """This container's place in the session, from Backend.AI's BACKENDAI_CLUSTER_* variables.

    `hosts` starts with the main container (node rank 0, which writes the log), then the subs in index
    order: BACKENDAI_CLUSTER_HOSTS promises no order (26.9 lists `sub1,main1`)."""

    hosts: tuple[str, ...]
    local_rank: int
    # host -> (address, SSH port) where Backend.AI gives a port map; else (host, 2200)
    endpoints: tuple[tuple[str, int], ...] = ()

    @property
    def size(self) -> int:
        return len(self.hosts)

    def endpoint(self, rank: int) -> tuple[str, int]:
        return self.endpoints[rank] if self.endpoints else (self.hosts[rank], SSH_PORT)

    @property
    def main_host(self) -> str:
        return self.hosts[0]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], port_map: Mapping[str, tuple[str, int]] | None = None
                     ) -> Cluster:
        """`port_map`: Backend.AI's SSH port map of the session (read_port_map()), where it has one."""
        size = int(environ.get("BACKENDAI_CLUSTER_SIZE", "1") or 1)
        listed = tuple(h for h in environ.get("BACKENDAI_CLUSTER_HOSTS", "").split(",") if h)
        if size <= 1:
            return cls(hosts=listed[:1] or ("localhost",), local_rank=0)
        if len(listed) != size:
            raise LaunchError(f"BACKENDAI_CLUSTER_SIZE={size} but BACKENDAI_CLUSTER_HOSTS names {len(listed)} "
                              f"hosts ({','.join(listed) or 'none'})")
        hosts = main_first(listed)
        endpoints: tuple[tuple[str, int], ...] = ()
        if port_map:
            if not set(hosts) <= set(port_map):
                raise LaunchError(HOST_NETWORK_DEFECT.format(hosts=",".join(listed)))
            endpoints = tuple(port_map[host] for host in hosts)
        own = environ.get("BACKENDAI_CLUSTER_HOST", "")
        if own:
            if own not in hosts:
                raise LaunchError(f"BACKENDAI_CLUSTER_HOST={own} is not among BACKENDAI_CLUSTER_HOSTS "
                                  f"({','.join(listed)})")
            return cls(hosts=hosts, local_rank=hosts.index(own), endpoints=endpoints)
        return cls(hosts=hosts, local_rank=int(environ.get("BACKENDAI_CLUSTER_LOCAL_RANK", "0")),
                   endpoints=endpoints)


def read_port_map(path: str = PORT_MAP) -> dict[str, tuple[str, int]] | None:
    """Backend.AI's map of each container's SSH address and port ({"main1": ["10.0.0.2", 2200]}), where
    the session has one (host-network resource groups)."""
    try:
        with open(path, encoding="utf-8") as file:
            raw = json.load(file)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LaunchError(f"cannot read Backend.AI's SSH port map {path}: {exc}") from None
    return {str(host): (str(entry[0]), int(entry[1])) for host, entry in raw.items()}


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


def ssh_command(endpoint: tuple[str, int], remote: Sequence[str], *, connect_timeout: int = 5) -> list[str]:
    """OpenSSH to a sibling container (address, port) with the session's key (also named in the kernel
    runner's ~/.ssh/config, which a user other than the image's may not read)."""
    host, port = endpoint
    identity = ["-i", SESSION_KEY] if os.path.exists(SESSION_KEY) else []
    return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            *identity, "-p", str(port), host, shlex.join(remote)]


def wait_for_ssh(endpoint: tuple[str, int], timeout: float, *, interval: float = 2.0) -> None:
    """Until `ssh host true` succeeds: a sub's sshd may start after main1's command."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        probe = subprocess.run(ssh_command(endpoint, ["true"]), capture_output=True, text=True, check=False,
                               stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            return
        last = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        if time.monotonic() >= deadline:
            raise LaunchError(f"cluster node {endpoint[0]} did not answer SSH on port {endpoint[1]} within "
                              f"{timeout:.0f}s (last answer: {last})")
        time.sleep(interval)


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def container_environ(path: str | None = None) -> dict[str, str]:
    """The environment the container started with (the image's ENV and Backend.AI's), which an SSH login
    does not get; empty where it cannot be read."""
    try:
        with open(path or CONTAINER_ENVIRON, "rb") as file:
            entries = file.read().split(b"\0")
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if b"=" in entry)
    return {key: value for key, _, value in pairs}


def sub_command(cluster: Cluster, node_rank: int, trainer: Sequence[str], *, nproc: str, master_port: int,
                environ: Mapping[str, str]) -> list[str]:
    """What main1 runs over SSH on the sub of `node_rank`: this module's `node` subcommand."""
    env = [f"{k}={v}" for k, v in sorted(forwarded_env(environ).items())]
    remote = ["env", *env, sys.executable, "-m", "common.mlperf.launcher", "node",
              f"--node-rank={node_rank}", f"--nnodes={cluster.size}", f"--master-addr={cluster.main_host}",
              f"--master-port={master_port}", f"--nproc-per-node={nproc}", f"--cwd={os.getcwd()}",
              "--", *trainer]
    return ssh_command(cluster.endpoint(node_rank), remote)


def interfaces() -> dict[str, ipaddress.IPv4Interface]:
    """This container's IPv4 interfaces (name -> address/netmask), read with ioctls: images may lack `ip`."""
    found: dict[str, ipaddress.IPv4Interface] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            packed = struct.pack("256s", name.encode()[:15])
            try:
                address = socket.inet_ntoa(fcntl.ioctl(probe.fileno(), SIOCGIFADDR, packed)[20:24])
                netmask = socket.inet_ntoa(fcntl.ioctl(probe.fileno(), SIOCGIFNETMASK, packed)[20:24])
            except OSError:  # no IPv4 address on it
                continue
            found[name] = ipaddress.IPv4Interface(f"{address}/{netmask}")
    return found


def interface_towards(address: str, available: Mapping[str, ipaddress.IPv4Interface]) -> str | None:
    """The interface whose network holds `address` (main1's): the one the session's nodes share."""
    target = ipaddress.IPv4Address(address)
    matches = [name for name, iface in available.items() if target in iface.network and not iface.is_loopback]
    return max(matches, key=lambda name: available[name].network.prefixlen) if matches else None


def network_env(main_host: str, environ: Mapping[str, str]) -> dict[str, str]:
    """NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME for the interface towards main1 (unless already set)."""
    try:
        address = socket.gethostbyname(main_host)
    except OSError:
        return {}
    name = interface_towards(address, interfaces())
    if name is None:
        return {}
    return {key: name for key in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME") if key not in environ}


def record_facts(facts: Mapping[str, object], environ: Mapping[str, str]) -> None:
    """What the launch chose, for the system description (run_and_time names the file)."""
    path = environ.get(FACTS_ENV)
    if not path:
        return
    with contextlib.suppress(OSError):
        with open(path + ".tmp", "w", encoding="utf-8") as file:
            json.dump(dict(facts), file)
        os.replace(path + ".tmp", path)


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


NCCL_LOG = "/tmp/mlperf-nccl.%h.%p.log"


def nccl_env(environ: Mapping[str, str]) -> dict[str, str]:
    """NCCL's INIT/NET log into files (not the console), to read which transport it chose; only with GPUs
    and where the user did not ask for NCCL's log."""
    if "NCCL_DEBUG" in environ or visible_gpus() == 0:
        return {}
    return {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET", "NCCL_DEBUG_FILE": NCCL_LOG}


def nccl_transport(pattern: str = NCCL_LOG) -> str | None:
    """"IB", "Socket", ... from NCCL's `Using network X` lines of this node's ranks."""
    folder, stem = os.path.split(pattern)
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.startswith(stem.split("%", 1)[0]):
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as file:
                    found |= set(re.findall(r"Using network (\S+)", file.read()))
    return ",".join(sorted(found)) or None


def launch(trainer: Sequence[str], *, nproc: str = "auto", master_port: int = MASTER_PORT,
           ssh_timeout: float = 300.0, environ: Mapping[str, str] | None = None) -> int:
    """Train on every node of this session (or on this container alone); the worst exit status."""
    environ = os.environ if environ is None else environ
    cluster = Cluster.from_environ(environ, read_port_map())
    if cluster.size > 1 and cluster.local_rank != 0:
        raise LaunchError(f"the launcher runs in {cluster.main_host} (local rank 0), not in local rank "
                          f"{cluster.local_rank}; Backend.AI starts a batch command only there")
    nodes: list[tuple[str, subprocess.Popen[bytes]]] = []
    per_node = resolve_nproc(nproc)
    extra = {**(network_env(cluster.main_host, environ) if cluster.size > 1 else {}), **nccl_env(environ)}
    child_environ = {**environ, **extra}
    interface = child_environ.get("GLOO_SOCKET_IFNAME") or child_environ.get("NCCL_SOCKET_IFNAME")
    try:
        for rank in range(1, cluster.size):
            address, port = cluster.endpoint(rank)
            wait_for_ssh((address, port), ssh_timeout)
            where = "" if address == cluster.hosts[rank] else f" at {address}"
            say(f"node {cluster.hosts[rank]} answers SSH{where} on port {port}")
        if cluster.size > 1:
            say(f"world of {per_node * cluster.size} worker(s) on {cluster.size} node(s) "
                f"({', '.join(cluster.hosts)}), {per_node} per node, rendezvous at {cluster.main_host}:{master_port}"
                + (f" over {interface}" if interface else ""))
        for rank in range(1, cluster.size):
            command = sub_command(cluster, rank, trainer, nproc=nproc, master_port=master_port,
                                  environ=child_environ)
            nodes.append((cluster.hosts[rank], subprocess.Popen(command, stdin=subprocess.PIPE,
                                                                start_new_session=True)))
        own = torchrun(trainer, nproc=per_node, nnodes=cluster.size, node_rank=0,
                       master_addr=cluster.main_host, master_port=master_port)
        nodes.append((cluster.main_host, subprocess.Popen(own, start_new_session=True, env=child_environ)))
    except BaseException:
        stop([proc for _, proc in nodes])
        raise
    code = supervise(nodes)
    record_facts({"nodes": list(cluster.hosts), "workers_per_node": per_node, "interface": interface,
                  "ssh": {host: list(cluster.endpoint(rank)) for rank, host in enumerate(cluster.hosts)},
                  "nccl_transport": nccl_transport() if "NCCL_DEBUG_FILE" in extra else None}, environ)
    return code


def run_node(trainer: Sequence[str], *, node_rank: int, nnodes: int, master_addr: str, master_port: int,
             nproc: str) -> int:
    """A sub's torchrun in the container's own environment (with main1's training settings over it),
    stopped when main1 closes the SSH connection (stdin reaches EOF)."""
    forwarded = forwarded_env(os.environ)
    environ = {**os.environ, **container_environ(), **forwarded}
    environ.update(network_env(master_addr, forwarded))
    command = torchrun(trainer, nproc=resolve_nproc(nproc), nnodes=nnodes, node_rank=node_rank,
                       master_addr=master_addr, master_port=master_port)
    proc = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL, env=environ)
    while proc.poll() is None:
        readable, _, _ = select.select([sys.stdin.fileno()], [], [], 0.5)
        if readable and not os.read(sys.stdin.fileno(), 4096):  # EOF: main1 or the connection is gone
            stop([proc])
    return exit_status(proc.returncode)


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
