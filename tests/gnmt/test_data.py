"""Vocabulary with the reference's special tokens, the training length limit, and corpus errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from translation.gnmt.data.dataset import CorpusError, ParallelCorpus, SourceCorpus
from translation.gnmt.data.vocabulary import BOS, EOS, PAD, UNK, Vocabulary, VocabularyMismatchError

pytestmark = [pytest.mark.slow, pytest.mark.training]  # imports torch


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def vocab(tmp_path: Path) -> Vocabulary:
    return Vocabulary.load(_write(tmp_path / "vocab.bpe.32000", ["the", "cat", "sat", "die", "Katze", "sa@@", "ß"]))


def test_special_tokens_come_first_and_padding_rounds_up(tmp_path: Path, vocab: Vocabulary) -> None:
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "<\\s>"] and (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert len(vocab) == 11
    assert len(Vocabulary.load(tmp_path / "vocab.bpe.32000", pad_to=8)) == 16
    assert vocab.encode("the dog sat") == [BOS, 4, UNK, 6, EOS]
    assert vocab.to_bpe_text([BOS, 8, 9, 10, EOS, PAD]) == "Katze sa@@ ß"


def test_pairs_over_the_limit_are_discarded_counting_bos_and_eos(tmp_path: Path, vocab: Vocabulary) -> None:
    src = _write(tmp_path / "s.en", ["the cat", "the cat sat", "cat"])
    tgt = _write(tmp_path / "t.de", ["die Katze", "die Katze", "die Katze sa@@ ß"])
    corpus = ParallelCorpus.load(src, tgt, vocab, max_len=4)  # 2 words + BOS + EOS fit
    assert [s.tolist() for s in corpus.src] == [[BOS, 4, 5, EOS]]
    assert corpus.lengths().tolist() == [4]


def test_long_test_sources_are_truncated_not_dropped(tmp_path: Path, vocab: Vocabulary) -> None:
    corpus = SourceCorpus.load(_write(tmp_path / "test.en", ["the cat sat the cat", "cat"]), vocab, max_len=4)
    assert [s.tolist() for s in corpus.src] == [[BOS, 4, 5, EOS], [BOS, 5, EOS]]


def test_sides_of_different_length_and_foreign_vocabularies_are_refused(tmp_path: Path, vocab: Vocabulary) -> None:
    src = _write(tmp_path / "s.en", ["the cat", "cat"])
    with pytest.raises(CorpusError, match=r"s\.en has 2 lines but .*t\.de has 1"):
        ParallelCorpus.load(src, _write(tmp_path / "t.de", ["die Katze"]), vocab, max_len=50)
    foreign = _write(tmp_path / "f.de", ["Hund Baum", "Haus"])
    with pytest.raises(VocabularyMismatchError, match=r"f\.de: 3 of 3 tokens .* does not match"):
        ParallelCorpus.load(src, foreign, vocab, max_len=50)
