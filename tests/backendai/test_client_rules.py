"""Fast checks of the client's per-release rules: version parsing, the session request each release
gets, and how scan errors are read."""

from __future__ import annotations

import pytest

from common.backendai import batch, rescan, runs
from common.backendai.server import RULES, Server, parse_version
from object_detection.tasks import CLUSTER

V23 = Server("http://127.0.0.1:1", "23.09.10", "v7.20230615")
V24 = Server("http://127.0.0.1:1", "24.09.0", "v8.20240915")
V26 = Server("http://127.0.0.1:1", "26.9.6", "v9.20250722")


def test_releases_parse_whatever_their_spelling() -> None:
    assert parse_version("23.09.10") == (23, 9, 10)
    assert parse_version("26.9.6") == (26, 9, 6)
    assert parse_version("26.4.0rc1") == (26, 4, 0)
    assert parse_version("24.03") == (24, 3, 0)
    with pytest.raises(ValueError, match=r"not a Backend\.AI release"):
        parse_version("main")


def test_rules_follow_the_release_and_say_since_when() -> None:
    assert not V23.has("vfolder_trash") and V24.has("vfolder_trash") and V26.has("vfolder_trash")
    assert not V24.has("events_need_session") and V26.has("events_need_session")
    assert V26.rule("rescan_by_registry").startswith("since 25.6.0, rescan_images looks its argument up")
    assert str(V26) == "Backend.AI 26.9.6 at http://127.0.0.1:1"
    assert all(rule.since >= (24, 3, 0) for rule in RULES.values()), "23.09 is the baseline"


def request(**overrides) -> batch.SessionRequest:
    values = {"name": "n", "image": "r/p/i:1", "command": "true", "resources": {"cpu": 1}, "resource_opts": {},
              "env": {}, "mounts": {"data": "/data"}, "read_only": frozenset({"data"}), "architecture": "x86_64",
              "timeout": 90.5, "cluster_size": 1, "cluster_mode": "single-node", "domain": None, "group": None}
    return batch.SessionRequest(**{**values, **overrides})


def test_each_release_gets_only_what_it_takes() -> None:
    """23.09's trafaret schema refuses keys it does not know; 24.09 adds batch_timeout and mount options."""
    old, mid, new = (request().body(server) for server in (V23, V24, V26))
    assert "batch_timeout" not in old and "mount_options" not in old["config"]
    assert mid["batch_timeout"] == new["batch_timeout"] == 90
    assert mid["config"]["mount_options"] == new["config"]["mount_options"] == {"data": {"permission": "ro"}}
    assert old["startupCommand"] == mid["startupCommand"] == new["startupCommand"] == "true"
    assert old["enqueueOnly"] and not old["reuseIfExists"] and old["type"] == "batch"
    assert "mount_options" not in request(read_only=frozenset()).body(V26)["config"]


def test_scan_errors_are_read_from_the_done_message() -> None:
    assert rescan.parse_done_message("['01a230db-8f80-7a87-ab60-7071bec05c8f']") == []
    message = "result: ['x']\nerrors: p/a:1: no ai.backend labels\np/b:2: manifest unknown"
    assert rescan.parse_done_message(message) == ["p/a:1: no ai.backend labels", "p/b:2: manifest unknown"]


def test_a_cluster_run_mounts_its_dataset_read_only_and_its_results_writable() -> None:
    spec = runs.ClusterRun(benchmark=CLUSTER, image="r/p/mlperf-maskrcnn:1", data_vfolder="coco")
    job = runs.batch_job(spec, seed=1, session="s")
    assert set(job.mounts) == {"coco", "mlperf-results"} and set(job.read_only) == {"coco"}
    assert "--data-dir /home/work/coco --results-dir /home/work/mlperf-results/s" in job.command
