"""MLPerf on the sandbox's Backend.AI: datasets prepared in virtual folders, runs as batch sessions of the
project's own images (one container and a two-container cluster session), logs brought home, faults, bad
input named before any session, resumable uploads.

Everything goes through the commands a user types (`invoke maskrcnn.prepare --on-cluster`, `invoke
maskrcnn.run --on-cluster ...`) against the sandbox, with the benchmark images built from the matrix.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from common.backendai import client as bai_client
from common.backendai import datasets
from common.backendai.sandbox import bootstrap
from common.backendai.sandbox.layout import SandboxLayout
from common.datasets.checksums import STAMP_FILE
from common.mlperf import compliance
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry,
              pytest.mark.training, pytest.mark.timeout(5400)]
COCO = "test-coco"
RESOURCES = ["--cpus-per-node", "2", "--mem-per-node", "6g"]


def invoke(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def mllog(path: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in path.read_text().splitlines() if ":::MLLOG" in line]


def start_invoke(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def session_of(output: str) -> str:
    """The run's session, from the `[<session>] <image>: ...` line the run prints first on stderr."""
    match = re.search(r"^\[(mlperf-maskrcnn-[0-9a-f]{10})\] ", output, re.MULTILINE)
    assert match, f"no session named in:\n{output[-3000:]}"
    return match.group(1)


def freeze(session: str) -> None:
    """SIGSTOP every process of the run in the session's main container: a run that hangs."""
    container = session_container(session, "main1")
    pids = [int(row[1]) for row in container.top(ps_args="-eo user,pid,args")["Processes"]
            if "object_detection" in row[2]]
    assert pids, container.top()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def assert_both_ranks_trained(stdout: str, records: list[dict]) -> None:
    """Each of the two workers said what it trained (rank 1 from sub1): the same epochs and iterations, one
    image each, which the log's global batch of 2 is; the log has those epochs, each a full pass over the
    training images, and an accuracy for some of them, whatever the accuracy."""
    trained = {int(rank): (int(epochs), int(iterations), int(images)) for rank, epochs, iterations, images in
               re.findall(r"^maskrcnn \(rank (\d) of 2\): trained (\d+) epoch\(s\), (\d+) iterations of "
                          r"(\d+) image\(s\)$", stdout, re.MULTILINE)}
    assert set(trained) == {0, 1}, stdout[-4000:]
    assert trained[0] == trained[1], trained
    epochs, iterations, images_per_worker = trained[0]
    global_batch = next(r["value"] for r in records if r["key"] == "global_batch_size")
    assert (images_per_worker, global_batch) == (1, 2)  # global batch = 2 workers x 1 image
    train_samples = next(r["value"] for r in records if r["key"] == "train_samples")
    per_epoch = [r["metadata"]["iterations"] for r in records if r["key"] == "epoch_stop"]
    assert len(per_epoch) == epochs >= 1 and sum(per_epoch) == iterations
    assert per_epoch[0] == train_samples // global_batch  # a full epoch: every image, each on one worker
    scored = [r["metadata"]["epoch_num"] for r in records if r["key"] == "eval_accuracy"]
    assert scored and set(scored) <= set(range(1, epochs + 1)), scored


def session_container(session: str, hostname: str) -> docker.models.containers.Container:
    """The kernel container of `session` whose cluster hostname is `hostname` (main1, sub1, ...)."""
    for container in docker.from_env().containers.list():
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] or [] if "=" in item)
        if env.get("BACKENDAI_SESSION_NAME") == session and container.attrs["Config"]["Hostname"] == hostname:
            return container
    raise AssertionError(f"no container {hostname} of session {session}")


@pytest.fixture(scope="module")
def cluster_env(sandbox: SandboxLayout) -> dict[str, str]:
    return {**os.environ, **bootstrap.client_environment(sandbox), "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def coco_vfolder(training_line: None, cluster_env: dict[str, str], benchmark_images: dict[str, str],
                 client_config: bai_client.APIConfig) -> Iterator[str]:
    """The Mask R-CNN sample, prepared inside a batch session of the benchmark's image."""
    result = invoke(cluster_env, "maskrcnn.prepare", "--on-cluster", "--sample", "--vfolder", COCO,
                    "--image", benchmark_images["maskrcnn"], timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Mask R-CNN sample in /home/work/test-coco: OK" in result.stdout
    yield COCO
    bai_client.delete_vfolder(COCO, config=client_config)


def test_prepare_on_cluster_fills_the_vfolder(coco_vfolder: str, client_config: bai_client.APIConfig) -> None:
    files = bai_client.list_tree(coco_vfolder, config=client_config)
    assert "coco/annotations/instances_train2017.json" in files
    assert "weights/resnet50-0676ba61.pth" in files
    assert sum(name.startswith("coco/train2017/") for name in files) == 48


@pytest.mark.usefixtures("training_line")
def test_gnmt_prepares_its_sample_in_its_own_image(cluster_env: dict[str, str], benchmark_images: dict[str, str],
                                                   client_config: bai_client.APIConfig) -> None:
    result = invoke(cluster_env, "gnmt.prepare", "--on-cluster", "--sample", "--vfolder", "test-wmt16",
                    "--image", benchmark_images["gnmt"], timeout=900)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        files = bai_client.list_tree("test-wmt16", config=client_config)
        assert any(name.endswith("vocab.bpe.32000") for name in files), sorted(files)[:20]
    finally:
        bai_client.delete_vfolder("test-wmt16", config=client_config)


def test_one_container_run_trains_to_the_target_and_brings_the_log_home(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                    "--image", benchmark_images["maskrcnn"], *RESOURCES, "--seed", "1",
                    "--results-dir", str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    log = tmp_path / "bai-1xCPU-open" / "maskrcnn" / "result_0.txt"
    assert f"MLPerf log: {log}" in result.stdout
    assert "compliance (3.1.0): PASSED" in result.stdout
    assert compliance.check_log(log, "3.1.0").passed
    assert any(line.startswith("RESULT,OBJECT_DETECTION,1,") for line in result.stdout.splitlines())
    records = mllog(log)
    assert [r["metadata"]["status"] for r in records if r["key"] == "run_stop"] == ["success"]
    assert next(r["value"] for r in records if r["key"] == "submission_platform") == "bai-1xCPU-open"
    # the program's own output, not the kernel runner's lines
    assert "ttyd" not in output and "chpasswd" not in output and "\r" not in output


@pytest.mark.usefixtures("training_line")
def test_two_container_cluster_session_trains_as_one_world(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path) -> None:
    """Both ranks train, whatever the run's accuracy: each says what it trained (rank 1 from sub1), the same
    epochs and iterations, one image each, and the log's global batch is those two images."""
    result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                    "--image", benchmark_images["maskrcnn"], "--nodes", "2", "--cpus-per-node", "1",
                    "--mem-per-node", "6g", "--seed", "1", "--timeout", "1200",
                    "--results-dir", str(tmp_path / "results"))
    output = result.stdout + result.stderr
    log = tmp_path / "results" / "bai-2xCPU-open" / "maskrcnn" / "result_0.txt"
    assert f"MLPerf log: {log}" in result.stdout, output
    verdict = compliance.check_log(log, "3.1.0")
    assert verdict.passed or verdict.other_complaints == [], verdict.summary()
    records = mllog(log)
    (status,) = [r["metadata"]["status"] for r in records if r["key"] == "run_stop"]
    assert result.returncode == {"success": 0, "aborted": 1}[status], output  # torchrun reports 3 as 1
    assert next(r["value"] for r in records if r["key"] == "submission_platform") == "bai-2xCPU-open"
    # one CPU worker per container, one image each: the global batch is twice the local one
    assert next(r["value"] for r in records if r["key"] == "global_batch_size") == 2
    assert "launcher: world of 2 worker(s) on 2 node(s) (main1, sub1)" in output
    assert_both_ranks_trained(result.stdout, records)
    assert " Child connection from " not in output  # the containers' sshd lines are not the program's
    description = json.loads((tmp_path / "systems" / "bai-2xCPU-open.json").read_text())  # beside results/
    # single-node cluster mode: both containers on one agent, one node of two CPUs (the name is the log's)
    assert description["number_of_nodes"] == "1"
    assert "(2 container(s) on 1 agent(s))" in description["hw_notes"]
    assert description["other_software_stack"]["image"] == benchmark_images["maskrcnn"]


@pytest.mark.usefixtures("training_line")
def test_a_sub_killed_mid_run_aborts_it_and_leaves_no_session(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path,
        client_config: bai_client.APIConfig) -> None:
    run = start_invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                       "--image", benchmark_images["maskrcnn"], "--nodes", "2", "--cpus-per-node", "1",
                       "--mem-per-node", "6g", "--seed", "5", "--results-dir", str(tmp_path))
    session = session_of("".join(_read_until(run, '"key": "epoch_start"')))
    session_container(session, "sub1").kill()
    output, _ = run.communicate(timeout=600)
    assert run.returncode != 0, output
    assert "launcher: node sub1 exited with" in output
    logs = list((tmp_path / "bai-2xCPU-open" / "maskrcnn").glob("result_0.txt*"))
    assert logs, output
    statuses = [r["metadata"].get("status") for r in mllog(logs[0]) if r["key"] == "run_stop"]
    assert statuses in (["aborted"], []), statuses  # aborted, or cut short before run_stop (.partial)
    assert session not in bai_client.live_sessions(client_config)


@pytest.mark.usefixtures("training_line")
def test_a_run_past_its_timeout_is_destroyed_and_says_so(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path,
        client_config: bai_client.APIConfig) -> None:
    """The run hangs once training has begun (its processes stopped), so only the timeout can end it,
    however fast the machine trains."""
    run = start_invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                       "--image", benchmark_images["maskrcnn"], *RESOURCES, "--timeout", "300",
                       "--results-dir", str(tmp_path))
    session = session_of("".join(_read_until(run, '"key": "epoch_start"')))
    freeze(session)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 124, output
    assert "timed out" in output
    assert f"[{session}] exit code 124" in output
    assert session not in bai_client.live_sessions(client_config)
    partial = list((tmp_path / "bai-1xCPU-open" / "maskrcnn").glob("result_0.txt.partial"))
    assert partial, output  # the log written so far, named as unfinished
    assert "epoch_start" in partial[0].read_text() and "run_stop" not in partial[0].read_text()


@pytest.mark.usefixtures("training_line")
def test_ctrl_c_destroys_the_session_and_keeps_the_partial_log(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path,
        client_config: bai_client.APIConfig) -> None:
    run = start_invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                       "--image", benchmark_images["maskrcnn"], *RESOURCES, "--results-dir", str(tmp_path))
    session = session_of("".join(_read_until(run, '"key": "epoch_start"')))
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 130, output
    assert "was destroyed" in output
    assert session not in bai_client.live_sessions(client_config)
    assert list((tmp_path / "bai-1xCPU-open" / "maskrcnn").glob("result_0.txt.partial")), output


def test_a_dataset_that_does_not_verify_stops_before_the_clock(
        benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path,
        client_config: bai_client.APIConfig) -> None:
    """The sample prepared here, one image cut short (an upload that stopped half-way), uploaded: the run
    in the session names the file before the clock, and nothing is written into the dataset folder."""
    data = tmp_path / "prepared"
    subprocess.run([sys.executable, "-m", "object_detection.download_dataset", "--sample", "--data-dir", str(data)],
                   cwd=REPO_ROOT, env=cluster_env, check=True, capture_output=True, timeout=600)
    victim = sorted((data / "coco" / "val2017").glob("*.jpg"))[2]
    content = victim.read_bytes()
    victim.write_bytes(content[: len(content) // 2])
    try:
        upload = invoke(cluster_env, "maskrcnn.prepare", "--upload", str(data), "--vfolder", "test-broken-coco",
                        timeout=300)
        assert upload.returncode == 0, upload.stdout + upload.stderr
        before = sorted(bai_client.list_tree("test-broken-coco", config=client_config))
        result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", "test-broken-coco",
                        "--image", benchmark_images["maskrcnn"], *RESOURCES, "--results-dir", str(tmp_path / "r"))
        after = sorted(bai_client.list_tree("test-broken-coco", config=client_config))
    finally:
        bai_client.delete_vfolder("test-broken-coco", config=client_config)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"FAILED /home/work/test-broken-coco/coco/val2017/{victim.name}: {len(content) // 2} bytes, "
            f"prepare recorded {len(content)}") in output
    assert "did not verify" in output and "STARTING TIMING RUN" not in output
    assert after == before  # nothing written into the dataset folder (no stamps, no sample)
    session = session_of(result.stderr)
    assert session not in bai_client.live_sessions(client_config)


def test_bad_input_is_named_before_any_session(benchmark_images: dict[str, str], cluster_env: dict[str, str],
                                               registry_host: str, tmp_path: Path) -> None:
    missing = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--vfolder", "no-such-folder",
                     "--image", benchmark_images["maskrcnn"], "--results-dir", str(tmp_path), timeout=120)
    assert missing.returncode == 1
    assert "virtual folder no-such-folder does not exist" in missing.stderr
    unknown = invoke(cluster_env, "maskrcnn.prepare", "--on-cluster", "--sample", "--vfolder", "test-unknown",
                     "--image", f"{registry_host}/mlperf-bai-test/never-registered:1.0", timeout=120)
    assert unknown.returncode == 1
    assert "never-registered" in unknown.stderr
    no_image = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--vfolder", COCO, timeout=60)
    assert no_image.returncode == 2 and "--on-cluster needs --image" in no_image.stderr


def test_a_session_the_scheduler_cannot_place_is_given_up_with_its_reason(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path,
        client_config: bai_client.APIConfig) -> None:
    result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                    "--image", benchmark_images["maskrcnn"], "--cpus-per-node", "64", "--mem-per-node", "6g",
                    "--start-timeout", "20", "--results-dir", str(tmp_path), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # the reason is the scheduler's or the manager's own word about the CPUs, not the request echoed back
    reasons = [line for line in result.stderr.splitlines() if "did not start within 20s" in line or "refused" in line]
    assert reasons, output
    assert re.search(r"\bcpu\b", reasons[0].split("did not start within 20s", 1)[-1].split("refused", 1)[-1],
                     re.IGNORECASE), reasons
    assert not [name for name in bai_client.live_sessions(client_config) if name.startswith("mlperf-maskrcnn-")]


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 900) -> list[str]:
    """Lines of a running command's output up to the first that contains `marker`."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return lines
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(lines)}")


def test_upload_sends_only_what_the_folder_lacks(cluster_env: dict[str, str], client_config: bai_client.APIConfig,
                                                 tmp_path: Path) -> None:
    source = tmp_path / "prepared"
    (source / "coco" / "train2017").mkdir(parents=True)
    (source / "coco" / "train2017" / "000000000001.jpg").write_bytes(os.urandom(300_000))
    (source / "coco" / "README").write_text("first\n")
    (source / STAMP_FILE).write_text("{}")  # local bookkeeping (mtimes of this disk), not data
    try:
        first = invoke(cluster_env, "maskrcnn.prepare", "--upload", str(source), "--vfolder", "test-upload",
                       timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "test-upload: 2 files uploaded" in first.stdout
        again = invoke(cluster_env, "maskrcnn.prepare", "--upload", str(source), "--vfolder", "test-upload",
                       timeout=300)
        assert "test-upload: 0 files uploaded (0.0 MB), 2 already there" in again.stdout
        (source / "coco" / "README").write_text("other\n")  # same size, other bytes
        changed = datasets.upload_prepared(source, "test-upload", config=client_config, progress=False)
        assert changed.uploaded == ["coco/README"]
        files = bai_client.list_tree("test-upload", config=client_config)
        assert set(files) == {"coco/README", "coco/train2017/000000000001.jpg", ".mlperf-upload.json"}
        back = bai_client.download("test-upload", ["coco/README"], tmp_path / "back", config=client_config)[0]
        assert back.read_text() == "other\n"
    finally:
        bai_client.delete_vfolder("test-upload", config=client_config)


def psql(sandbox: SandboxLayout, sql: str) -> str:
    """A query on the sandbox manager's database (the stand-in for what only the manager's scheduler does)."""
    password = bootstrap.load_secrets(sandbox)["db_password"]
    result = subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-p", str(sandbox.ports.postgres), "-U", "postgres",
                             "-d", "backend", "-c", sql], capture_output=True, text=True, check=True,
                            env={**os.environ, "PGPASSWORD": password}, timeout=60)
    return result.stdout.strip()


# The releases that know the PREEMPTED status (before, a rescheduled session goes back to PENDING).
PREEMPTED_SINCE = (26, 8, 0)


@pytest.mark.training
def test_a_session_preempted_mid_run_ends_it_with_the_partial_log_home(
        sandbox: SandboxLayout, server, benchmark_images: dict[str, str], cluster_env: dict[str, str],
        client_config: bai_client.APIConfig, coco_vfolder: str, tmp_path: Path) -> None:
    """The scheduler marks a victim PREEMPTED (26.8+) or puts it back to PENDING to run again: either ends the
    run. The session asked not to be preempted, so the scheduler is stood in for by its database row."""
    run = subprocess.Popen([sys.executable, "-m", "invoke", "maskrcnn.run", "--on-cluster", "--sample", "--vfolder",
                            coco_vfolder, "--image", benchmark_images["maskrcnn"], "--cpus-per-node", "2",
                            "--mem-per-node", "6g", "--results-dir", str(tmp_path)], cwd=REPO_ROOT, env=cluster_env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 900
    assert run.stdout is not None
    for line in run.stdout:
        seen.append(line)
        if '"key": "epoch_start"' in line or time.monotonic() > deadline:
            break
    session = next(line.split("]")[0].lstrip("[") for line in seen if line.startswith("[mlperf-maskrcnn-"))
    status = "PREEMPTED" if server.version >= PREEMPTED_SINCE else "PENDING"
    psql(sandbox, f"update sessions set status = '{status}' where name = '{session}'")
    output = "".join(seen) + run.communicate(timeout=600)[0]
    assert run.returncode == 1, output
    assert f"was preempted mid-run (status {status}" in output and "it was destroyed" in output
    assert session not in bai_client.live_sessions(client_config)
    assert list((tmp_path / "bai-1xCPU-open" / "maskrcnn").glob("result_*.txt.partial")), output


@pytest.mark.usefixtures("training_line")
def test_a_multi_node_run_puts_its_containers_on_two_agents_and_trains_as_one_world(
        sandbox: SandboxLayout, coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str],
        tmp_path: Path) -> None:
    """Two agents of the sandbox over a single-node swarm: each container takes a whole agent (2 cores), so the
    two land on different agents, reach each other over the session's overlay network, and train one world."""
    if not sandbox.line.in_container:
        pytest.skip("Backend.AI 23.09 runs one agent per process: two agents need 25.12+")
    result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                    "--image", benchmark_images["maskrcnn"], "--nodes", "2", "--cluster-mode", "multi-node",
                    "--cpus-per-node", "2", "--mem-per-node", "6g", "--seed", "1", "--timeout", "1500",
                    "--results-dir", str(tmp_path / "results"))
    output = result.stdout + result.stderr
    assert "launcher: node sub1 answers SSH on port 2200" in output, output[-4000:]
    world = re.search(r"launcher: world of 2 worker\(s\) on 2 node\(s\) \(main1, sub1\), 1 per node, "
                      r"rendezvous at main1:29500 over (\S+)", output)
    assert world, output[-4000:]
    description = json.loads((tmp_path / "systems" / "bai-2xCPU-open.json").read_text())
    placed = re.search(r"Backend.AI agents: (\S+), (\S+) \(2 container\(s\) on 2 agent\(s\)\)",
                       description["hw_notes"])
    assert placed and placed.group(1) != placed.group(2), description["hw_notes"]
    assert description["number_of_nodes"] == "2"
    assert description["host_networking"].startswith(
        f"Backend.AI cluster session of 2 containers (main1, sub1), over {world.group(1)}")
    log = tmp_path / "results" / "bai-2xCPU-open" / "maskrcnn" / "result_0.txt"
    records = mllog(log)
    (status,) = [r["metadata"]["status"] for r in records if r["key"] == "run_stop"]
    assert result.returncode == {"success": 0, "aborted": 1}[status], output[-4000:]
    assert_both_ranks_trained(result.stdout, records)
