"""common.results.published: the project's published figures, the user's own, and bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.results import published


def test_the_project_figures_carry_a_source_for_each_benchmark() -> None:
    entries = published.load()
    assert {e.benchmark for e in entries} == {"maskrcnn", "gnmt", "llama31_8b"}
    assert {e.round for e in entries if e.benchmark == "maskrcnn"} >= {"v0.7", "v3.0", "v3.1"}
    llama = {(e.accelerators, e.nodes) for e in entries if e.benchmark == "llama31_8b"}
    assert {("8x NVIDIA B200-SXM-180GB", 1), ("64x NVIDIA B200-SXM-180GB", 8),
            ("64x NVIDIA H100-SXM5-80GB", 8)} <= llama
    assert all(e.source and e.minutes > 0 for e in entries)
    dgx_a100 = {(e.benchmark, e.minutes) for e in entries if e.system == "DGX A100" and e.round == "v0.7"}
    assert dgx_a100 == {("maskrcnn", 82.16), ("gnmt", 7.81)}


def test_a_user_file_adds_entries(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("results:\n  - {benchmark: maskrcnn, round: ours, submitter: Us, system: lab, "
                    "accelerators: 2x H100, minutes: 30, source: our notebook}\n")
    entries = published.load([mine])
    assert entries[-1] == published.Published("maskrcnn", "ours", "Us", "lab", "2x H100", 30.0, "our notebook")
    assert len(entries) == len(published.load()) + 1


@pytest.mark.parametrize(("text", "message"), [
    ("results: [", "not YAML"),
    ("- a\n", "expected a top-level 'results:' list"),
    ("results:\n  - {benchmark: gnmt}\n", "results[0]: no round, submitter, system, accelerators, minutes, source"),
    ("results:\n  - {benchmark: gnmt, round: r, submitter: s, system: x, accelerators: a, minutes: fast, "
     "source: s}\n", "results[0]: minutes must be a number"),
    ("results:\n  - {benchmark: gnmt, round: r, submitter: s, system: x, accelerators: a, minutes: 1, "
     "source: s, colour: red}\n", "results[0]: unknown field(s) colour"),
])
def test_a_bad_file_is_named_with_the_entry_at_fault(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(published.PublishedDataError, match=f"^{bad}: ") as error:
        published.load([bad])
    assert message in str(error.value)
