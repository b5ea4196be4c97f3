"""common.mlperf.launcher across agents: the interface towards main1, Backend.AI's SSH port map (and the
host-network defect it reveals), the sub container's own environment, and the launch facts."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.mlperf import launcher
from tests.conftest import REPO_ROOT

# What a multi-node session's container has (26.9.6 across two agents): the session's overlay as eth0 and
# docker_gwbridge as eth1, the default route, in the same subnet on every host.
OVERLAY = {"lo": ipaddress.IPv4Interface("127.0.0.1/8"), "eth0": ipaddress.IPv4Interface("10.0.3.4/24"),
           "eth1": ipaddress.IPv4Interface("172.22.0.3/16")}
TWO = {"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "sub1,main1", "BACKENDAI_CLUSTER_HOST": "main1"}


def test_the_interface_is_the_one_on_main1s_network_whatever_its_name() -> None:
    assert launcher.interface_towards("10.0.3.2", OVERLAY) == "eth0"
    renamed = {"lo": OVERLAY["lo"], "baimulti0": OVERLAY["eth0"], "eth0": OVERLAY["eth1"]}
    assert launcher.interface_towards("10.0.3.2", renamed) == "baimulti0"
    assert launcher.interface_towards("192.168.9.9", OVERLAY) is None
    # on main1 itself its own address is on the overlay
    assert launcher.interface_towards("10.0.3.4", OVERLAY) == "eth0"


def test_this_machines_interfaces_are_read_without_ip() -> None:
    found = launcher.interfaces()
    assert found["lo"] == ipaddress.IPv4Interface("127.0.0.1/8")
    name, iface = next((n, i) for n, i in found.items() if not i.is_loopback)
    assert launcher.network_env(str(iface.ip), {}) == {"NCCL_SOCKET_IFNAME": name, "GLOO_SOCKET_IFNAME": name}
    assert launcher.network_env(str(iface.ip), {"NCCL_SOCKET_IFNAME": "ib0"}) == {"GLOO_SOCKET_IFNAME": name}
    assert launcher.network_env("127.0.0.1", {}) == {}, "loopback is never the way to another container"


def test_a_port_map_gives_each_nodes_address_and_ssh_port(tmp_path: Path) -> None:
    path = tmp_path / "port-mapping.json"
    path.write_text(json.dumps({"main1": ["10.1.0.5", 21513], "sub1": ["10.1.0.6", 21009]}))
    cluster = launcher.Cluster.from_environ(TWO, launcher.read_port_map(str(path)))
    assert cluster.endpoint(1) == ("10.1.0.6", 21009)
    command = launcher.sub_command(cluster, 1, ["-m", "x"], nproc="1", master_port=29500, environ={})
    assert command[command.index("-p") + 1] == "21009" and "10.1.0.6" in command
    assert launcher.read_port_map(str(tmp_path / "none.json")) is None
    assert launcher.Cluster.from_environ(TWO).endpoint(1) == ("sub1", 2200)


def test_a_host_network_sessions_map_is_refused_naming_the_backend_ai_defect(tmp_path: Path) -> None:
    """26.9.6 in a host-network resource group: the map is keyed by node-<kernel id>, the hosts are main1, sub1."""
    path = tmp_path / "port-mapping.json"
    path.write_text(json.dumps({"node-6f1c": ["127.0.0.1", 21513], "node-9a2b": ["127.0.0.1", 21009]}))
    with pytest.raises(launcher.LaunchError, match=r"host-network resource group: Backend.AI keys its SSH port "
                                                   r"map by node-<kernel id> while BACKENDAI_CLUSTER_HOSTS names "
                                                   r"sub1,main1"):
        launcher.Cluster.from_environ(TWO, launcher.read_port_map(str(path)))
    # one container needs no SSH: it runs
    assert launcher.Cluster.from_environ({"BACKENDAI_CLUSTER_SIZE": "1"}, launcher.read_port_map(str(path))).size == 1


def test_the_container_environment_is_read_from_its_first_process(tmp_path: Path) -> None:
    environ = tmp_path / "environ"
    environ.write_bytes(b"PATH=/opt/conda/bin:/usr/bin\0LD_LIBRARY_PATH=/usr/local/cuda/lib64\0EMPTY=\0")
    assert launcher.container_environ(str(environ)) == {"PATH": "/opt/conda/bin:/usr/bin",
                                                        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "EMPTY": ""}
    assert launcher.container_environ(str(tmp_path / "missing")) == {}


PRINT_ENV = "import os, sys; print('SEEN', os.environ.get('LD_LIBRARY_PATH'), os.environ.get('MLPERF_X'))"


def test_a_subs_tasks_get_the_containers_environment_under_main1s_settings(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The node subcommand as an SSH login runs it: a bare environment plus main1's forwarded settings;
    the training sees the image's LD_LIBRARY_PATH (from the container's first process) too."""
    environ = tmp_path / "environ"
    environ.write_bytes(b"LD_LIBRARY_PATH=/usr/local/cuda/lib64\0MLPERF_X=from-the-container\0")
    script = (f"import sys; from common.mlperf import launcher; launcher.CONTAINER_ENVIRON = {str(environ)!r}; "
              "sys.exit(launcher.main(sys.argv[1:]))")
    login = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), "MLPERF_X": "from-main1", "HOME": "/tmp"}
    # stdin stays open as main1's SSH connection does (its end stops the node)
    node = subprocess.Popen([sys.executable, "-c", script, "node", "--node-rank=0", "--nnodes=1",
                             "--master-addr=127.0.0.1", "--nproc-per-node=1", "--", "-c", PRINT_ENV],
                            env=login, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert node.wait(timeout=60) == 0, node.stderr.read()
    assert "SEEN /usr/local/cuda/lib64 from-main1" in node.stdout.read()
    node.stdin.close()


def test_the_launch_facts_are_written_where_run_and_time_asks(tmp_path: Path) -> None:
    facts = tmp_path / "launch.json"
    launcher.record_facts({"interface": "eth0", "nodes": ["main1", "sub1"]}, {launcher.FACTS_ENV: str(facts)})
    assert json.loads(facts.read_text()) == {"interface": "eth0", "nodes": ["main1", "sub1"]}
    launcher.record_facts({"interface": "eth0"}, {})  # not asked: nothing written, no error


def test_nccl_reports_its_transport_from_its_own_log(tmp_path: Path) -> None:
    pattern = str(tmp_path / "nccl.%h.%p.log")
    (tmp_path / "nccl.main1.101.log").write_text("main1:101 NCCL INFO NET/Socket : Using [0]eth0:10.0.3.4<0>\n"
                                                "main1:101 NCCL INFO Using network Socket\n")
    (tmp_path / "nccl.main1.102.log").write_text("main1:102 NCCL INFO Using network Socket\n")
    assert launcher.nccl_transport(pattern) == "Socket"
    (tmp_path / "nccl.main1.103.log").write_text("main1:103 NCCL INFO Using network IB\n")
    assert launcher.nccl_transport(pattern) == "IB,Socket"
    assert launcher.nccl_transport(str(tmp_path / "none" / "nccl.%h.log")) is None
