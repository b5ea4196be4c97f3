"""common.results.systems: descriptions MLCommons' checker accepts, read from this machine, edits kept."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from pathlib import Path

import pytest
from mlperf_logging.system_desc_checker.system_desc_checker import check_system_desc

from common.mlperf import launcher
from common.results import systems
from tests import nvidia_smi

CLUSTER = systems.SystemFacts(
    submitter="Backend.AI", division="closed", status="cloud", nodes=2, host_processor_model="Intel Xeon 8480C",
    host_processors_per_node=2, host_processor_core_count=56, host_processor_vcpu_count=224,
    host_memory_bytes=2 * 2**40, accelerator_model="NVIDIA H100 80GB HBM3", accelerators_per_node=8,
    accelerator_memory_bytes=80 * 2**30, frameworks={"PyTorch": "2.4.1", "CUDA": "12.4"},
    operating_system="Ubuntu 22.04", image="harbor.example.com/mlperf/mlperf-maskrcnn:0.1.0-cuda12.4-py3.11",
)


def _local() -> systems.SystemFacts:
    return systems.probe_local(submitter="Backend.AI", division="closed", status="onprem")


@pytest.mark.parametrize("ruleset", ["3.1.0", "4.1.0"])
def test_the_checker_accepts_what_is_written(tmp_path: Path, ruleset: str) -> None:
    written = systems.write_description(tmp_path, "local", _local())
    valid, name, _, _ = check_system_desc(str(written.path), "training", ruleset)
    assert (valid, name) == (True, "local")


def on_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, node: str | None) -> None:
    """PATH with the recorded nvidia-smi of `node` first (None: no nvidia-smi anywhere on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if node is not None:
        nvidia_smi.install(bin_dir, node)
    monkeypatch.setenv("PATH", str(bin_dir) if node is None else f"{bin_dir}:{os.environ['PATH']}")


def test_the_local_probe_reads_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_node(monkeypatch, tmp_path, None)
    path = systems.write_description(tmp_path, "here", _local()).path
    described = json.loads(path.read_text())
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert described["host_processor_model_name"] == re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M).group(1)
    assert described["host_processor_vcpu_count"] == str(os.cpu_count())
    assert described["number_of_nodes"] == "1"
    assert described["framework"].startswith(f"PyTorch {importlib.metadata.version('torch')}, CUDA ")
    meminfo_kib = int(re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
    assert described["host_memory_capacity"] == f"{meminfo_kib * 1024 / 2**30:.0f} GB"
    assert (described["accelerators_per_node"], described["accelerator_model_name"]) == ("0", "N/A")
    assert described["cooling"] == systems.PLACEHOLDER and described["hw_notes"] == ""
    assert described["status"] == "Available on-premise"


def test_a_cluster_description_from_explicit_fields(tmp_path: Path) -> None:
    described = json.loads(systems.write_description(tmp_path, "bai-2x8xH100", CLUSTER).path.read_text())
    assert {k: described[k] for k in ("number_of_nodes", "accelerators_per_node", "accelerator_model_name",
                                      "accelerator_memory_capacity", "host_memory_capacity", "framework",
                                      "status")} == {
        "number_of_nodes": "2", "accelerators_per_node": "8", "accelerator_model_name": "NVIDIA H100 80GB HBM3",
        "accelerator_memory_capacity": "80 GB", "host_memory_capacity": "2048 GB",
        "framework": "PyTorch 2.4.1, CUDA 12.4", "status": "Available cloud"}
    assert described["other_software_stack"]["image"] == CLUSTER.image
    assert list(described) == list(systems.SCHEMA_FIELDS)


def test_what_the_owner_filled_in_is_kept_and_a_new_machine_is_reported(tmp_path: Path) -> None:
    path = systems.write_description(tmp_path, "box", CLUSTER).path
    edited = json.loads(path.read_text())
    edited.update(cooling="liquid", host_storage_type="NVMe SSD", hw_notes="rack 4", my_field="kept too")
    path.write_text(json.dumps(edited))
    smaller = systems.SystemFacts(**{**CLUSTER.__dict__, "nodes": 1, "accelerators_per_node": 4})
    written = systems.write_description(tmp_path, "box", smaller)
    again = json.loads(path.read_text())
    assert (again["cooling"], again["host_storage_type"], again["hw_notes"], again["my_field"]) == (
        "liquid", "NVMe SSD", "rack 4", "kept too")
    assert (again["number_of_nodes"], again["accelerators_per_node"]) == ("1", "4")
    assert written.changes == ["number_of_nodes: 2 -> 1", "accelerators_per_node: 8 -> 4"]


def test_a_broken_description_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "systems" / "box.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(systems.SystemDescriptionError, match=rf"^{re.escape(str(path))}: not JSON .*not rewritten"):
        systems.write_description(tmp_path, "box", CLUSTER)
    assert path.read_text() == "{not json"
    with pytest.raises(systems.SystemDescriptionError, match=r": not JSON \("):
        systems.read_description(path)
    path.write_text('{"submitter": "x"}')
    with pytest.raises(systems.SystemDescriptionError, match=r"no division, status, .*which result_summarizer reads"):
        systems.read_description(path)


def test_in_a_cluster_session_the_probe_counts_its_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKENDAI_CLUSTER_SIZE", "2")
    monkeypatch.setenv("BACKENDAI_CLUSTER_HOSTS", "main1,sub1")
    assert _local().nodes == 2


@pytest.mark.parametrize(("node", "model", "memory", "system"), [
    ("8xH100", "NVIDIA H100 80GB HBM3", "80 GB", "bai-2x8xH100"),
    ("8xH200", "NVIDIA H200", "140 GB", "bai-2x8xH200"),
    ("no-driver", "N/A", "N/A", "bai-2xCPU"),
])
def test_the_accelerators_are_what_nvidia_smi_says_on_the_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str, model: str, memory: str, system: str) -> None:
    """nvidia-smi's own answers, recorded on an H100 and an H200 node and on a node without a working driver."""
    on_node(monkeypatch, tmp_path, node)
    described = json.loads(systems.write_description(tmp_path, "node", _local()).path.read_text())
    count = "0" if node == "no-driver" else "8"
    assert (described["accelerators_per_node"], described["accelerator_model_name"],
            described["accelerator_memory_capacity"]) == (count, model, memory)
    valid, _, _, _ = check_system_desc(str(tmp_path / "systems" / "node.json"), "training", "3.1.0")
    assert valid
    two_nodes = {"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1"}
    assert launcher.system_name(two_nodes, launcher.accelerator_names()) == system
