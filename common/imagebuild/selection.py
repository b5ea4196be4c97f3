"""What the image commands share: which matrix entries, which references, and the outcome summary.

`nox -s build_images/test_images/push_images -- --benchmark maskrcnn --cuda 12.4 --py 3.11` all select
entries the same way and name images the same way, so a test or push finds exactly what a build made.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from common.imagebuild.matrix import MATRIX_FILE, ROOT, Entry, Matrix, MatrixError, load_matrix
from common.labels.image_tag import validate_image_reference

DEFAULT_REGISTRY = "localhost:5000"
DEFAULT_PROJECT = "mlperf"
COMMIT_LENGTH = 12


class SelectionError(ValueError):
    """Options that name no image, or a commit that cannot be determined."""


@dataclass(frozen=True)
class Target:
    """Where a selection's images are named: `<registry>/<project>/mlperf-<benchmark>:<tag>`."""

    matrix: Matrix
    entries: tuple[Entry, ...]
    registry: str
    project: str
    commit: str | None

    def reference(self, entry: Entry) -> str:
        return entry.reference(self.registry, self.project, self.matrix.version)

    def immutable_reference(self, entry: Entry) -> str | None:
        if not self.commit:
            return None
        return entry.reference(self.registry, self.project, self.matrix.version, self.commit)


@dataclass(frozen=True)
class Outcome:
    entry: str
    ok: bool
    summary: str


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", action="append", default=[], help="repeatable; default: all")
    parser.add_argument("--cuda", action="append", default=[], help="repeatable, e.g. 12.4")
    parser.add_argument("--py", action="append", default=[], help="repeatable, e.g. 3.11")
    parser.add_argument("--registry", default=os.environ.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY,
                        help="registry host (env IMAGE_REGISTRY; default %(default)s)")
    parser.add_argument("--project", default=os.environ.get("IMAGE_PROJECT") or DEFAULT_PROJECT,
                        help="Harbor project / repository namespace (env IMAGE_PROJECT)")
    parser.add_argument("--commit", default=None,
                        help="commit for the immutable tag (default: $GITHUB_SHA, else git HEAD)")
    parser.add_argument("--matrix", type=Path, default=MATRIX_FILE, help=argparse.SUPPRESS)


def current_commit(explicit: str | None = None) -> str | None:
    """First 12 hex digits of the commit being built, or None outside a git checkout."""
    if explicit:
        commit = explicit
    elif os.environ.get("GITHUB_SHA"):
        commit = os.environ["GITHUB_SHA"]
    else:
        result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return None
        commit = result.stdout.strip()
    commit = commit.lower()
    if len(commit) < COMMIT_LENGTH or any(c not in "0123456789abcdef" for c in commit):
        raise SelectionError(f"commit {commit!r} must be at least {COMMIT_LENGTH} hex digits")
    return commit[:COMMIT_LENGTH]


def target_from(args: argparse.Namespace) -> Target:
    """Load the matrix (refusing a bad one before anything runs) and select entries."""
    matrix = load_matrix(args.matrix)
    entries = matrix.select(args.benchmark, args.cuda, args.py)
    target = Target(matrix, tuple(entries), args.registry.rstrip("/"), args.project,
                    current_commit(args.commit))
    errors = [error for entry in entries
              for reference in (target.reference(entry), target.immutable_reference(entry)) if reference
              for error in validate_image_reference(reference)]
    if errors:
        raise SelectionError("; ".join(errors))
    return target


def run_cli(argv: Sequence[str] | None, parser: argparse.ArgumentParser, action) -> int:
    """Parse, select and run `action(args, target) -> list[Outcome]`; exit 1 when any entry failed."""
    args = parser.parse_args(argv)
    try:
        target = target_from(args)
    except (MatrixError, SelectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outcomes = action(args, target)
    print_summary(parser.prog, outcomes)
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


def print_summary(what: str, outcomes: Sequence[Outcome], stream: TextIO = sys.stdout) -> None:
    failed = sum(not o.ok for o in outcomes)
    print(f"\n== {what}: {len(outcomes) - failed} ok, {failed} failed", file=stream)
    for outcome in outcomes:
        print(f"  {'ok    ' if outcome.ok else 'FAILED'} {outcome.entry}: {outcome.summary}", file=stream)
