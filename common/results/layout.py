"""Where results live: the project's own layout and MLCommons' submission layout.

- The project's layout (what run_and_time writes): DIR is `<system>/<benchmark>/result_<i>.txt`;
  system descriptions, when there are any, sit beside DIR in `systems/<system>.json` (the folder
  holding `results/` and `systems/` is itself a submission folder).
- A submission folder (as in mlcommons/training_results_vX.Y/<submitter>): DIR holds
  `results/<system>/<benchmark>/result_<i>.txt` and `systems/<system>.json`.
- A folder of submission folders (a whole training_results_vX.Y checkout).

A benchmark folder is any folder that holds a `result_*.txt` (the pattern `result_summarizer`
globs); result files may be numbered from 0 or from 1.

API:
- `find(root, globs=(RESULT_GLOB,)) -> list[BenchmarkFolder]` (raises `NoResultsError`): the folders holding
  files that match one of `globs` (the projection also reads probes and logs still being written)
- `BenchmarkFolder.results() -> list[Path]`, `.files(globs)`, `.label`, `.description_path`,
  `.description_required`
- `project_folder(results_root, system, benchmark) -> BenchmarkFolder`
- `submission_root(results_root) -> Path`: the folder that holds the project's `results/` and `systems/`
- `numbering(paths) -> str | None`: a note when the numbering is neither 0..n-1 nor 1..n
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RESULT_GLOB = "result_*.txt"
_INDEX = re.compile(r"^result_(\d+)\.txt$")


class NoResultsError(FileNotFoundError):
    """DIR does not exist or holds no MLPerf result files."""


@dataclass(frozen=True)
class BenchmarkFolder:
    path: Path
    system: str
    benchmark: str
    submitter: str | None
    systems_dir: Path
    description_required: bool

    @property
    def label(self) -> str:
        return "/".join(p for p in (self.submitter, self.system, self.benchmark) if p)

    @property
    def description_path(self) -> Path:
        return self.systems_dir / f"{self.system}.json"

    def results(self) -> list[Path]:
        return self.files((RESULT_GLOB,))

    def files(self, globs: tuple[str, ...]) -> list[Path]:
        return sorted({p for pattern in globs for p in self.path.glob(pattern)}, key=_order)


def _order(path: Path) -> tuple[str, int, str]:
    match = _INDEX.match(path.name)
    return ("", int(match.group(1)), path.name) if match else (path.name.split("_")[0], _number(path.name), path.name)


def _number(name: str) -> int:
    digits = re.search(r"_(\d+)\.txt", name)
    return int(digits.group(1)) if digits else 1 << 62


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _benchmarks(results_root: Path, systems_dir: Path, submitter: str | None, required: bool,
                globs: tuple[str, ...]) -> list[BenchmarkFolder]:
    return [
        BenchmarkFolder(bench, system.name, bench.name, submitter, systems_dir, required)
        for system in _subfolders(results_root)
        for bench in _subfolders(system)
        if any(next(bench.glob(pattern), None) is not None for pattern in globs)
    ]


def _is_submission(folder: Path) -> bool:
    return (folder / "results").is_dir()


def find(root: Path, globs: tuple[str, ...] = (RESULT_GLOB,)) -> list[BenchmarkFolder]:
    if not root.is_dir():
        raise NoResultsError(f"{root}: no such folder")
    submissions = [root] if _is_submission(root) else [c for c in _subfolders(root) if _is_submission(c)]
    if submissions:
        found = [f for s in submissions for f in _benchmarks(s / "results", s / "systems", s.name, True, globs)]
    else:
        found = _benchmarks(root, submission_root(root) / "systems", None, False, globs)
    if not found:
        raise NoResultsError(f"{root}: no {' or '.join(globs)} files in <system>/<benchmark>/ folders, in results/ "
                             "of a submission folder, or in submission folders below it")
    return found


def submission_root(results_root: Path) -> Path:
    return results_root.resolve().parent


def project_folder(results_root: Path, system: str, benchmark: str) -> BenchmarkFolder:
    return BenchmarkFolder(results_root / system / benchmark, system, benchmark, None,
                           submission_root(results_root) / "systems", False)


def numbering(paths: list[Path]) -> str | None:
    indices = [int(m.group(1)) for p in paths if (m := _INDEX.match(p.name))]
    odd = [p.name for p in paths if not _INDEX.match(p.name)]
    if indices and not odd and sorted(indices) in (list(range(len(indices))), list(range(1, len(indices) + 1))):
        return None
    parts = [f"numbered {', '.join(map(str, sorted(indices)))}"] if indices else []
    parts += [f"not numbered: {', '.join(odd)}"] if odd else []
    return "result files " + "; ".join(parts) + " (MLPerf numbers them 0..n-1 or 1..n)"
