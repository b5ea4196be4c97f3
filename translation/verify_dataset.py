"""Check the GNMT data before the clock: the reference's md5s, what prepare recorded, structure, token cache.

    python -m translation.verify_dataset --data-dir /data [--full] [--allow-dataset-drift]
    python -m translation.verify_dataset --data-dir /tmp/sample --sample

A problem is one of two kinds:
- broken: a file is missing, parallel files differ in length, a file changed after the step of
  `prepare` that wrote it (the step is named; `prepare` redoes it and every step after it), a
  downloaded archive does not match its published digest;
- drift: a file is exactly what `prepare` wrote here, but its md5 is not the reference's: this
  preprocessing gives other bytes than the reference's. The step most likely at fault is named from
  which of the reference's files differ. `--allow-dataset-drift` accepts such data; the runs are
  then logged as open division.
Exits 1 on any broken file, and on drift unless it is allowed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.datasets.checksums import Stamps, Status, verify_files
from common.datasets.manifest import Manifest, load_manifest
from common.datasets.steps import add_verify_args, run_cli
from translation import token_cache
from translation.layout import Wmt16Layout
from translation.steps import STEP_NAMES, md5_of, read_records

MANIFEST = Path(__file__).with_name("dataset_manifest.yaml")
DRIFT_OPTION = "--allow-dataset-drift"


@dataclass
class Verdict:
    """What verification found; `drift` lists files that differ from the reference only."""

    what: str
    checks: int = 0
    broken: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    drift_reason: str = ""
    notes: list[str] = field(default_factory=list)

    def ok(self, allow_drift: bool) -> bool:
        return not self.broken and (allow_drift or not self.drift)

    def report(self, allow_drift: bool) -> int:
        """Print the findings; the exit status."""
        for note in self.notes:
            print(f"note: {note}", file=sys.stderr)
        for problem in self.broken:
            print(f"FAILED {problem}", file=sys.stderr)
        for problem in self.drift:
            print(f"{'DRIFT' if allow_drift else 'FAILED'} {problem}", file=sys.stderr)
        if self.drift:
            print(self.drift_reason, file=sys.stderr)
        if not self.ok(allow_drift):
            print(f"{self.what}: {len(self.broken) + len(self.drift)} problem(s) found", file=sys.stderr)
            return 1
        drift = f"; {len(self.drift)} file(s) differ from the reference (open division)" if self.drift else ""
        print(f"{self.what}: OK ({self.checks} checks{drift})")
        return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m translation.verify_dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(p, MANIFEST)
    p.add_argument(DRIFT_OPTION, action="store_true",
                   help="accept files that differ from the reference's md5s only (runs log the open division)")
    return p


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def layout_problems(layout: Wmt16Layout, test_sentences: int | None) -> tuple[list[str], int]:
    """Missing files, parallel files of different lengths, an empty vocabulary, a wrong test size."""
    missing = [p for p in layout.required() if not p.is_file()]
    problems = [f"{p}: missing" for p in missing]
    checks = len(layout.required())
    pairs = [(layout.train("en"), layout.train("de")), (layout.dev("en"), layout.dev("de")),
             (layout.test_bpe("en"), layout.test_bpe("de")), (layout.test_bpe("en"), layout.test_raw("de"))]
    for a, b in pairs:
        if a in missing or b in missing:
            continue
        checks += 1
        na, nb = _lines(a), _lines(b)
        if na != nb or na == 0:
            problems.append(f"{a.name} has {na} lines but {b.name} has {nb}: expected equal, non-zero counts")
    if layout.test_raw("de") not in missing and test_sentences is not None:
        checks += 1
        if (n := _lines(layout.test_raw("de"))) != test_sentences:
            problems.append(f"{layout.test_raw('de')}: expected {test_sentences} sentences, found {n}")
    if layout.vocab not in missing:
        checks += 1
        if _lines(layout.vocab) == 0:
            problems.append(f"{layout.vocab}: empty vocabulary")
    return problems, checks


def step_changes(layout: Wmt16Layout, full: bool) -> tuple[dict[Path, str], dict[Path, str], int]:
    """Files that differ from what their step recorded (path -> problem), each recorded file's step
    and md5 (path -> md5), and the number of files compared. Size and mtime decide unless `full`;
    a file whose mtime alone changed is re-hashed. Files deleted since (intermediates) are skipped."""
    changed: dict[Path, str] = {}
    recorded: dict[Path, str] = {}
    compared = 0
    for step in STEP_NAMES:
        for record in read_records(layout, step) or []:
            path = layout.root / record["name"]
            recorded[path] = record["md5"]
            if not path.is_file():
                continue
            compared += 1
            st = path.stat()
            if not full and [st.st_size, st.st_mtime_ns] == [record["size"], record["mtime_ns"]]:
                continue
            actual = md5_of(path) if st.st_size == record["size"] else None
            if actual != record["md5"]:
                what = f"md5 {actual}" if actual else f"{st.st_size} bytes"
                expected = f"md5 {record['md5']}" if actual else f"{record['size']} bytes"
                changed[path] = (f"{path}: changed since step `{step}` of prepare wrote it ({what}, recorded "
                                 f"{expected}); `invoke gnmt.prepare` redoes `{step}` and the steps after it")
    return changed, recorded, compared


def cache_problems(layout: Wmt16Layout, full: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) of the token cache: stale or unreadable is a problem, absent a note."""
    try:
        manifest = token_cache.read_manifest(layout)
        if manifest is None:
            return [], [f"no token cache in {layout.token_cache}: the trainer will encode the BPE text on the "
                        "clock; `invoke gnmt.prepare` writes it"]
        reason = token_cache.stale_reason(layout, manifest, by_digest=full)
    except (token_cache.CacheError, KeyError, TypeError) as exc:
        reason = f"unreadable ({exc})"
    if reason:
        return [f"{layout.token_cache}: stale token cache: {reason}; `invoke gnmt.prepare` rewrites it"], []
    return [], []


def drift_reason(layout: Wmt16Layout, drifted: set[Path]) -> str:
    """The step most likely at fault, from which of the reference's files differ, and how to proceed."""
    test_bpe = {layout.test_bpe("en"), layout.test_bpe("de")}
    dev = {layout.dev("en"), layout.dev("de")}
    train = {layout.train("en"), layout.train("de")}
    if layout.test_raw("de") in drifted:
        step, why = "assemble", ("newstest2014.de is the text of an SGM file of dev.tgz: the archive or its "
                                 "extraction differ")
    elif drifted & test_bpe and drifted & (train | dev):
        step, why = "bpe-learn", ("the raw test text matches but every kind of BPE file differs: the BPE model, "
                                  "learnt from the training corpus, differs (look at its tokenise and clean first)")
    elif drifted & test_bpe:
        step, why = "tokenise", ("only newstest2014's BPE files differ, with the reference's BPE model (the "
                                 "training files match): the tokeniser treats some test sentences differently")
    elif drifted & dev:
        step, why = "clean", ("the dev set (newstest2015+2016) differs while the BPE model and the test set match: "
                              "tokenise or clean of the dev sets differ")
    else:
        step, why = "clean", ("only the training pairs differ, so the BPE model is the reference's: clean "
                              "(clean-corpus-n, the latin-1 filter) keeps other pairs, or the training text differs")
    return (f"drift: these files are what prepare wrote, but not the reference's bytes. Most likely step: `{step}`: "
            f"{why}. To proceed: train on them as an open-division run with {DRIFT_OPTION} (run_and_time; for "
            f"`invoke gnmt.run` set MLPERF_ALLOW_DATASET_DRIFT=1), or put the files the reference's "
            f"download_dataset.sh writes into {layout.root}.")


def reference_check(manifest: Manifest, layout: Wmt16Layout, verdict: Verdict, changed: dict[Path, str],
                    recorded: dict[Path, str], full: bool, jobs: int) -> None:
    """The manifest's digests: archives must match; a trainer file that differs is drift when it is
    what prepare recorded, and broken otherwise."""
    data_dir = layout.data_dir
    optional = {data_dir / e.path for e in manifest.downloads if e.extract_to}
    outputs = {data_dir / e.path for e in manifest.checked}
    required = set(layout.required())  # their absence is a layout problem already
    entries = [(p, c) for p, c in manifest.checksummed(data_dir)
               if p.is_file() or (p not in optional and p not in required)]
    drifted: set[Path] = set()
    for result in verify_files(entries, Stamps(data_dir), full=full, workers=jobs):
        verdict.checks += 1
        if result.status is Status.OK or result.path in changed:
            continue
        if result.status is Status.MISMATCH and result.path in outputs and recorded.get(result.path) in (
                result.actual, None):
            drifted.add(result.path)
            verdict.drift.append(result.describe())
        else:
            verdict.broken.append(result.describe())
    if drifted:
        verdict.drift_reason = drift_reason(layout, drifted)


def check(data_dir: Path, *, sample: bool, manifest_path: Path = MANIFEST, full: bool = False,
          jobs: int = 4) -> Verdict:
    layout = Wmt16Layout(data_dir)
    verdict = Verdict(f"GNMT {'sample' if sample else 'data'} in {layout.root}")
    manifest = None if sample else load_manifest(manifest_path)
    problems, checks = layout_problems(layout, None if manifest is None else manifest.extra.get("test_sentences"))
    changed, recorded, compared = step_changes(layout, full)
    cache, notes = cache_problems(layout, full)
    verdict.broken += [*problems, *changed.values(), *cache]
    verdict.notes += notes
    verdict.checks += checks + compared + 1
    if manifest is not None:
        reference_check(manifest, layout, verdict, changed, recorded, full, jobs)
    return verdict


def run(args: argparse.Namespace) -> int:
    verdict = check(args.data_dir, sample=args.sample, manifest_path=args.manifest, full=args.full, jobs=args.jobs)
    return verdict.report(args.allow_dataset_drift)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
