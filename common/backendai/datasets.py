"""A benchmark's dataset in a Backend.AI virtual folder, prepared where it will be used.

`prepare_in_session` runs the benchmark's own download and verify inside a batch session of its image,
writing into the mounted folder, so 19 GB of COCO never cross the user's laptop. `upload_prepared` is the
other way, for data prepared locally: it is resumable. The folder keeps a record of every file uploaded
whole (`.mlperf-upload.json`: size and SHA-256), so a second upload sends only files whose size or digest
differ from what the folder holds, and an upload cut short resumes with the file it was sending.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.atomic import write_text_atomic
from common.backendai import client as bai_client
from common.backendai.benchmark import ClusterBenchmark, NodeResources
from common.backendai.errors import BackendAIError
from common.backendai.runs import MOUNT_ROOT, session_name
from common.datasets.checksums import STAMP_FILE, hash_file

UPLOAD_RECORD = ".mlperf-upload.json"
# Local bookkeeping that means nothing in the folder (stamps hold local mtimes).
NOT_UPLOADED = frozenset({STAMP_FILE, UPLOAD_RECORD})
BATCH_BYTES = 256 << 20
BATCH_FILES = 500


@dataclass(frozen=True)
class UploadReport:
    uploaded: list[str]
    skipped: list[str]
    bytes_sent: int


def prepare_command(benchmark: ClusterBenchmark, vfolder: str, *, sample: bool, seed: int,
                    mirror: str | None) -> str:
    """Download (or generate the sample) into the mounted folder, then verify it there."""
    data_dir = f"{MOUNT_ROOT}/{vfolder}"
    download = ["python", "-m", benchmark.download_module, "--data-dir", data_dir,
                *(["--sample", "--seed", str(seed)] if sample else []), *(["--mirror", mirror] if mirror else [])]
    verify = ["python", "-m", benchmark.verify_module, "--data-dir", data_dir, *(["--sample"] if sample else [])]
    return f"{shlex.join(download)} && {shlex.join(verify)}"


def prepare_in_session(benchmark: ClusterBenchmark, *, image: str, vfolder: str, sample: bool = False,
                       seed: int = 0, mirror: str | None = None, resources: NodeResources | None = None,
                       timeout: float = 6 * 3600.0, config: bai_client.APIConfig | None = None,
                       say: Callable[[str], None] = print) -> int:
    """The benchmark's prepare in a batch session, into the folder (created if missing); its exit status."""
    bai_client.ensure_vfolder(vfolder, config=config)
    resources = resources or NodeResources(cpu=2, mem="8g")
    session = session_name(f"{benchmark.name}-prepare")
    job = bai_client.BatchJob(
        image=image, command=prepare_command(benchmark, vfolder, sample=sample, seed=seed, mirror=mirror),
        resources=resources.slots(), shmem=resources.shmem, mounts={vfolder: None}, name=session,
        env={"PYTHONUNBUFFERED": "1"}, timeout=timeout)
    say(f"[{session}] preparing {benchmark.name} data in virtual folder {vfolder} with {image}")
    result = bai_client.run_batch(job, config=config, on_event=lambda e: say(f"[{session}] {e}"),
                                  on_output=lambda line: print(line, flush=True))
    say(f"[{session}] exit code {result.exit_code}"
        + ("" if result.exit_code == 0 else f": the data in {vfolder} is not ready"))
    return result.exit_code


def local_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in NOT_UPLOADED and not path.name.endswith(".part"):
            yield path


def read_record(vfolder: str, remote: dict[str, int], config: bai_client.APIConfig | None) -> dict[str, dict]:
    """What the folder says it received whole; an entry counts only while the folder's size matches."""
    if UPLOAD_RECORD not in remote:
        return {}
    with tempfile.TemporaryDirectory(prefix="mlperf-upload-") as scratch:
        path = bai_client.download(vfolder, [UPLOAD_RECORD], Path(scratch), config=config)[0]
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
    return {name: entry for name, entry in record.items() if remote.get(name) == entry.get("size")}


def write_record(vfolder: str, record: dict[str, dict], config: bai_client.APIConfig | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mlperf-upload-") as scratch:
        path = Path(scratch) / UPLOAD_RECORD
        write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True))
        bai_client.upload(vfolder, [UPLOAD_RECORD], Path(scratch), config=config)


def upload_prepared(source: Path, vfolder: str, *, config: bai_client.APIConfig | None = None,
                    progress: bool = True) -> UploadReport:
    """Upload a locally prepared dataset into the folder (created if missing), skipping what it holds."""
    if not source.is_dir():
        raise BackendAIError(f"--upload {source}: not a directory (give the prepared --data-dir)")
    bai_client.ensure_vfolder(vfolder, config=config)
    remote = bai_client.list_tree(vfolder, config=config)
    record = read_record(vfolder, remote, config)
    files = list(local_files(source))
    wanted: list[tuple[Path, str, int, str]] = []
    skipped: list[str] = []
    for path in tqdm(files, desc="checking", unit="file", disable=not progress):
        name, size = path.relative_to(source).as_posix(), path.stat().st_size
        digest = hash_file(path, "sha256")
        if record.get(name) == {"size": size, "sha256": digest}:
            skipped.append(name)
        else:
            wanted.append((path, name, size, digest))
    sent = 0
    with tqdm(total=sum(size for *_, size, _ in wanted), unit="B", unit_scale=True, desc=f"upload to {vfolder}",
              disable=not progress) as bar:
        for batch in batches(wanted):
            bai_client.upload(vfolder, [name for _, name, _, _ in batch], source, config=config)
            for _, name, size, digest in batch:
                record[name] = {"size": size, "sha256": digest}
            # Recorded after each batch: an interrupted upload resumes at the batch it was sending.
            write_record(vfolder, record, config)
            batch_bytes = sum(size for _, _, size, _ in batch)
            sent += batch_bytes
            bar.update(batch_bytes)
    return UploadReport(uploaded=[name for _, name, _, _ in wanted], skipped=skipped, bytes_sent=sent)


def batches(items: list[tuple[Path, str, int, str]]) -> Iterator[list[tuple[Path, str, int, str]]]:
    """Groups of files up to BATCH_BYTES or BATCH_FILES (COCO is 123k small JPEGs and a few big zips)."""
    batch: list[tuple[Path, str, int, str]] = []
    size = 0
    for item in items:
        if batch and (size + item[2] > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch
