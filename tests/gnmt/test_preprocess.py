"""The preprocessing as a whole: SGM extraction, the vocabulary, deterministic output (also with 2 workers),
and `verify` naming the step whose output changed, or the step at fault when the bytes are not the reference's."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from translation import verify_dataset
from translation.bpe import build_vocab
from translation.layout import Wmt16Layout
from translation.sample import build_sample
from translation.sgm import SgmError, sgm_segments
from translation.steps import STEP_NAMES

pytestmark = pytest.mark.timeout(600)  # its slow tests


def test_sgm_segments_as_input_from_sgm_perl(tmp_path: Path) -> None:
    sgm = tmp_path / "t.sgm"
    sgm.write_bytes('<srcset setid="t" srclang="any">\n<doc docid="1">\n<p>\n'
                    '<seg id="1">  Erster \t Satz. </seg>\n'
                    '<seg id="2">\nZweiter &amp;\nSatz.</seg>\n'
                    '<SEG id="3">Drei\xa0mit\u2009Leerzeichen</SEG>\n'
                    '<seg id="4">a</seg><seg id="5">b</seg>\n'
                    '<seg>no attribute, no segment</seg>\n'
                    '</p>\n</doc>\n</srcset>\n'.encode())
    assert [s.decode() for s in sgm_segments(sgm)] == [
        "Erster Satz.",
        "Zweiter &amp;Satz.",  # the lines of a segment are joined after `chop`, with nothing between them
        "Drei\xa0mit\u2009Leerzeichen",  # bytes: only ASCII whitespace is whitespace
        'a</seg><seg id="5">b',  # from the first <seg> to the last </seg> of the line
    ]


def test_unterminated_segment_names_the_file(tmp_path: Path) -> None:
    sgm = tmp_path / "bad.sgm"
    sgm.write_text('<seg id="1">never closed\n', encoding="utf-8")
    with pytest.raises(SgmError, match=r"bad\.sgm: unterminated <seg>"):
        list(sgm_segments(sgm))


def test_vocab_ranks_by_count_then_first_appearance_across_both_languages(tmp_path: Path) -> None:
    (tmp_path / "t.en").write_text("b a@@ a@@\n", encoding="utf-8")
    (tmp_path / "t.de").write_text("c b\nd\n", encoding="utf-8")
    assert build_vocab([tmp_path / "t.en", tmp_path / "t.de"], tmp_path / "vocab") == 4
    assert (tmp_path / "vocab").read_text(encoding="utf-8").splitlines() == ["b", "a@@", "c", "d"]


def _outputs(layout: Wmt16Layout) -> dict[str, bytes]:
    """Every file the preprocessing wrote, by name (the step records hold mtimes, so they are left out)."""
    return {str(p.relative_to(layout.root)): p.read_bytes() for p in sorted(layout.root.rglob("*"))
            if p.is_file() and layout.step_records not in p.parents}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Wmt16Layout:
    layout = Wmt16Layout(tmp_path_factory.mktemp("wmt-one-worker"))
    build_sample(layout.data_dir, seed=3, train_pairs=1200, test_pairs=40, workers=1)
    return layout


@pytest.fixture
def copy_of(prepared: Wmt16Layout, tmp_path: Path) -> Wmt16Layout:
    shutil.copytree(prepared.data_dir, tmp_path / "data")  # copy2 keeps the mtimes the records hold
    return Wmt16Layout(tmp_path / "data")


@pytest.mark.slow
def test_preprocessing_gives_the_same_bytes_twice_and_with_two_workers(prepared: Wmt16Layout, tmp_path: Path) -> None:
    again = Wmt16Layout(tmp_path / "two-workers")
    steps = build_sample(again.data_dir, seed=3, train_pairs=1200, test_pairs=40, workers=2)
    assert [s.name for s in steps] == list(STEP_NAMES)
    first, second = _outputs(prepared), _outputs(again)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    assert {"train.tok.clean.bpe.32000.en", "token_cache/train.de.ids", "vocab.bpe.32000"} <= first.keys()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "step"), [
    ("train.tok.clean.en", "clean"),
    ("newstest2014.tok.bpe.32000.en", "bpe-apply"),
    ("token_cache/train.en.ids", "token-cache"),
])
def test_verify_names_the_step_whose_output_changed(copy_of: Wmt16Layout, name: str, step: str, capsys) -> None:
    argv = ["--data-dir", str(copy_of.data_dir), "--sample"]
    assert verify_dataset.main(argv) == 0
    victim = copy_of.root / name
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1  # one bit, same size
    victim.write_bytes(bytes(data))
    capsys.readouterr()

    assert verify_dataset.main(argv) == 1
    err = capsys.readouterr().err
    assert f"FAILED {victim}: changed since step `{step}` of prepare wrote it" in err
    assert f"`invoke gnmt.prepare` redoes `{step}` and the steps after it" in err

    steps = build_sample(copy_of.data_dir, seed=3, train_pairs=1200, test_pairs=40, workers=1)
    assert [s.name for s in steps if s.ran] == list(STEP_NAMES[STEP_NAMES.index(step):])
    assert verify_dataset.main(argv) == 0


def _reference_manifest(layout: Wmt16Layout, path: Path, wrong: set[Path]) -> Path:
    """A manifest like the real one whose digests are the sample's, except for `wrong` files."""
    checked = [layout.train("en"), layout.train("de"), layout.dev("en"), layout.dev("de"),
               layout.test_bpe("en"), layout.test_bpe("de"), layout.test_raw("de")]
    entries = [{"path": str(p.relative_to(layout.data_dir)),
                "md5": "0" * 32 if p in wrong else hashlib.md5(p.read_bytes()).hexdigest()} for p in checked]
    path.write_text(yaml.safe_dump({"downloads": [], "checked": entries, "test_sentences": 40}))
    return path


@pytest.mark.slow
def test_bytes_other_than_the_reference_are_drift_with_the_step_named(copy_of: Wmt16Layout, tmp_path: Path,
                                                                      capsys) -> None:
    manifest = _reference_manifest(copy_of, tmp_path / "m.yaml", {copy_of.train("de")})
    argv = ["--data-dir", str(copy_of.data_dir), "--manifest", str(manifest)]

    assert verify_dataset.main(argv) == 1
    err = capsys.readouterr().err
    assert f"FAILED {copy_of.train('de')}: checksum mismatch: expected md5:{'0' * 32}" in err
    assert "these files are what prepare wrote, but not the reference's bytes. Most likely step: `clean`" in err
    assert "--allow-dataset-drift" in err

    assert verify_dataset.main([*argv, "--allow-dataset-drift"]) == 0
    out = capsys.readouterr()
    assert f"DRIFT {copy_of.train('de')}: checksum mismatch" in out.err
    assert "1 file(s) differ from the reference (open division)" in out.out


@pytest.mark.parametrize(("wrong", "step"), [
    ({"raw"}, "assemble"),
    ({"test"}, "tokenise"),
    ({"test", "train"}, "bpe-learn"),
    ({"dev"}, "clean"),
    ({"train"}, "clean"),
])
def test_the_step_at_fault_follows_from_which_reference_files_differ(wrong: set[str], step: str) -> None:
    layout = Wmt16Layout(Path("/data"))
    files = {"raw": {layout.test_raw("de")}, "test": {layout.test_bpe("en")}, "dev": {layout.dev("de")},
             "train": {layout.train("en"), layout.train("de")}}
    drifted = set().union(*(files[w] for w in wrong))
    assert f"Most likely step: `{step}`" in verify_dataset.drift_reason(layout, drifted)
