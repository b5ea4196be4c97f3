"""Check the GNMT data: the reference's md5s of the files the trainer reads, then their structure.

    python -m translation.verify_dataset --data-dir /data [--full]
    python -m translation.verify_dataset --data-dir /tmp/sample --sample

Exits 1 naming each missing or bad file, with expected and actual digests or line counts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common.datasets.steps import add_verify_args, run_cli, verify
from translation.layout import Wmt16Layout

MANIFEST = Path(__file__).with_name("dataset_manifest.yaml")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m translation.verify_dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(p, MANIFEST)
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


def run(args: argparse.Namespace) -> int:
    layout = Wmt16Layout(args.data_dir)
    return verify(args, "GNMT", layout.root, lambda expected: layout_problems(layout, expected), "test_sentences")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
