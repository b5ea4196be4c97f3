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
    assert V26.rule("rescan_by_registry").startswith("since 25.6.0, rescan_images looks its argument up")
    assert str(V26) == "Backend.AI 26.9.6 at http://127.0.0.1:1"
    assert all(rule.since >= (24, 3, 0) for rule in RULES.values()), "23.09 is the baseline"


def request(**overrides) -> batch.SessionRequest:
    values = {"name": "n", "image": "r/p/i:1", "command": "true", "resources": {"cpu": 1}, "resource_opts": {},
              "env": {}, "mounts": {"data": "/data", "out": None}, "read_only": frozenset({"data"}),
              "architecture": "x86_64", "timeout": 90.5, "cluster_size": 1, "cluster_mode": "single-node",
              "domain": None, "group": None,
              "folder_ids": {"data": "0a1b2c3d-0000-4000-8000-000000000001",
                             "out": "0a1b2c3d-0000-4000-8000-000000000002"}}
    return batch.SessionRequest(**{**values, **overrides})


def at(release: str) -> Server:
    return Server("http://127.0.0.1:1", release, "v9")


# Each request key with the last release that lacks it and the first that takes it, as read at the release
# tags of lablup/backend.ai (not from the client's rule table, which these tests check).
BOUNDARIES = {
    "batch_timeout": ("24.09.14", "24.12.0"),   # #3066; 24.09's schema refuses the key
    "mount_options": ("23.09.11", "24.03.0"),   # #1838
    # accepted from 25.12.0 (#5237, API v9); needed from 26.4.4 (names resolve without owner scoping)
    "mount_ids": ("26.3.0", "26.4.0"),
    "is_preemptible": ("26.2.5", "26.3.0"),     # preemptible by default since 26.3
}


def _has(body: dict, key: str) -> bool:
    return key in body or key in body["config"]


@pytest.mark.parametrize("key", BOUNDARIES)
def test_each_key_is_sent_from_the_release_that_takes_it(key: str) -> None:
    before, since = BOUNDARIES[key]
    assert not _has(request().body(at(before)), key), f"{before} does not take {key}"
    assert _has(request().body(at(since)), key), f"{since} takes {key}"


def test_23_09_gets_only_what_it_knows() -> None:
    body = request().body(V23)
    assert not {"batch_timeout", "is_preemptible"} & set(body)
    assert not {"mount_options", "mount_ids", "mount_id_map"} & set(body["config"])
    assert body["config"]["mounts"] == ["data", "out"] and body["config"]["mount_map"] == {"data": "/data"}
    assert body["startupCommand"] == "true" and body["enqueueOnly"] and not body["reuseIfExists"]
    assert body["type"] == "batch"


def test_the_read_only_mount_and_the_timeout_as_each_release_names_them() -> None:
    by_name = request().body(at("24.12.0"))
    assert by_name["batch_timeout"] == 90
    assert by_name["config"]["mount_options"] == {"data": {"permission": "ro"}}
    assert "mount_options" not in request(read_only=frozenset()).body(at("24.12.0"))["config"]


def test_folders_are_mounted_by_the_id_of_the_folder_meant_from_26_4() -> None:
    """From 26.4.4 a name resolves to the last row of that name, whoever owns it: ids leave no doubt."""
    config = request().body(V26)["config"]
    data, out = "0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"
    assert config["mount_ids"] == [data, out] and config["mount_id_map"] == {data: "/data"}
    assert config["mount_options"] == {data: {"permission": "ro"}}
    assert "mounts" not in config and "mount_map" not in config
    with pytest.raises(ValueError, match="no id for data"):
        request(folder_ids={}).body(V26)


def test_a_run_asks_not_to_be_preempted() -> None:
    assert request().body(V26)["is_preemptible"] is False


def test_a_manager_outside_the_known_lines_is_refused_naming_them() -> None:
    assert at("23.09.10").unsupported() is None and at("26.9.6").unsupported() is None
    assert at("26.4.16").unsupported() is None and at("24.09.3").unsupported() is None
    assert "older than 23.09" in at("23.03.12").unsupported()
    newer = at("27.1.0").unsupported()
    assert "not been checked" in newer and "26.4 LTS" in newer and "MLPERF_BAI_ACCEPT_RELEASE=27.1.0" in newer
    assert at("27.1.0").unsupported(accepted="27.1.0") is None


def test_scan_errors_are_read_from_the_done_message() -> None:
    assert rescan.parse_done_message("['01a230db-8f80-7a87-ab60-7071bec05c8f']") == []
    message = "result: ['x']\nerrors: p/a:1: no ai.backend labels\np/b:2: manifest unknown"
    assert rescan.parse_done_message(message) == ["p/a:1: no ai.backend labels", "p/b:2: manifest unknown"]


def test_a_cluster_run_mounts_its_dataset_read_only_and_its_results_writable() -> None:
    spec = runs.ClusterRun(benchmark=CLUSTER, image="r/p/mlperf-maskrcnn:1", data_vfolder="coco")
    job = runs.batch_job(spec, seed=1, session="s")
    assert set(job.mounts) == {"coco", "mlperf-results"} and set(job.read_only) == {"coco"}
    assert "--data-dir /home/work/coco --results-dir /home/work/mlperf-results/s" in job.command


def test_a_node_sweep_is_parsed_each_count_once() -> None:
    from invoke import Exit  # noqa: PLC0415

    from common.backendai.benchmark_tasks import node_counts  # noqa: PLC0415

    assert node_counts("t", "2") == [2] and node_counts("t", "1,2,4") == [1, 2, 4] and node_counts("t", 3) == [3]
    for wrong in ("0", "1,1", "two", ""):
        with pytest.raises(Exit):
            node_counts("t", wrong)
