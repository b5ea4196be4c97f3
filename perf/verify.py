"""Verification throughput against md5sum on the same files in the same run.

Two cases: one large file (parallelism cannot help; expect >= 0.9x md5sum) and many files (the
thread pool hashes several at once; expect to beat one sequential md5sum). A third times what
`prepare` adds after extracting: the sha256 of many files for the inventory, against sha256sum; a
fourth what plain `verify` does with an inventory of small files (COCO has 123k): check their sizes,
against `find -printf %s` listing them.
Files are read once before timing so both sides hash from the page cache. Prints the figures;
asserts nothing.

    python perf/verify.py [--large-mb 1024] [--files 200 --file-mb 4] [--jobs 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.datasets import inventory
from common.datasets.checksums import Checksum, Status, hash_files, verify_files
from common.datasets.steps import file_problems
from perf.timing import best_of


def make_file(path: Path, size: int) -> Checksum:
    h = hashlib.md5()
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(block)
            h.update(block)
    return Checksum("md5", h.hexdigest())


def ours(entries, jobs: int) -> None:
    results = verify_files(entries, workers=jobs, show_progress=False)
    assert all(r.status is Status.OK for r in results), [r.describe() for r in results if r.status is not Status.OK]


def md5sum(paths: list[Path]) -> None:
    subprocess.run(["md5sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)


def record_case(paths: list[Path], jobs: int, repeat: int) -> None:
    def sha256sum() -> None:
        subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)

    mb = sum(p.stat().st_size for p in paths) / 1e6
    t_peer = best_of(sha256sum, repeat)
    t_ours = best_of(lambda: hash_files(paths, "sha256", workers=jobs, show_progress=False), repeat)
    print(f"record (sha256): {len(paths)} file(s), {mb:.0f} MB | sha256sum {mb / t_peer:.0f} MB/s | "
          f"hash_files (jobs={jobs}) {mb / t_ours:.0f} MB/s | ratio {t_peer / t_ours:.2f}x")


def sizes_case(root: Path, count: int, jobs: int, repeat: int) -> None:
    folder = root / "images"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:012d}.jpg").write_bytes(os.urandom(512))
    inventory.record(root, "images.zip", {}, inventory.files_under([folder]), jobs)

    def find() -> None:
        subprocess.run(["find", str(folder), "-type", "f", "-printf", "%s\n"], check=True, stdout=subprocess.DEVNULL)

    def ours() -> None:
        problems, _ = file_problems(root, None, full=False, jobs=jobs)
        assert not problems, problems[:3]

    t_peer, t_ours = best_of(find, repeat), best_of(ours, repeat)
    print(f"verify sizes: {count} recorded files | find {t_peer * 1000:.0f} ms | "
          f"verify {t_ours * 1000:.0f} ms | ratio {t_peer / t_ours:.2f}x")


def case(name: str, entries, jobs: int, repeat: int) -> None:
    paths = [p for p, _ in entries]
    total = sum(p.stat().st_size for p in paths)
    md5sum(paths)  # warm the page cache
    t_md5sum = best_of(lambda: md5sum(paths), repeat)
    t_ours = best_of(lambda: ours(entries, jobs), repeat)
    mb = total / 1e6
    print(f"{name}: {len(paths)} file(s), {mb:.0f} MB | md5sum {mb / t_md5sum:.0f} MB/s | "
          f"verify (jobs={jobs}) {mb / t_ours:.0f} MB/s | ratio {t_md5sum / t_ours:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-mb", type=int, default=4)
    parser.add_argument("--small-files", type=int, default=20000, help="files in the inventory of the sizes case")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the test files (default: a temp dir)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        large = root / "large.bin"
        case("one large file", [(large, make_file(large, args.large_mb << 20))], args.jobs, args.repeat)
        large.unlink()
        many = [(root / f"f{i:04d}.bin", None) for i in range(args.files)]
        many = [(p, make_file(p, args.file_mb << 20)) for p, _ in many]
        case("many files", many, args.jobs, args.repeat)
        record_case([p for p, _ in many], args.jobs, args.repeat)
        sizes_case(root, args.small_files, args.jobs, args.repeat)


if __name__ == "__main__":
    main()
