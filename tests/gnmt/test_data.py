"""Vocabulary with the reference's special tokens, the token cache, the training length limit and padding."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from translation import token_cache
from translation.gnmt.data.dataset import CorpusError, ParallelCorpus, SourceCorpus
from translation.gnmt.data.vocabulary import BOS, EOS, PAD, UNK, Vocabulary, VocabularyMismatchError, check_unknown_rate
from translation.layout import Wmt16Layout

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(600)]  # imports torch


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


def test_lines_become_flat_ids_and_offsets_with_unknowns_counted(vocab: Vocabulary) -> None:
    side = token_cache.encode_lines(["the cat", "", "dog  sat the"], vocab)
    assert side.ids.tolist() == [4, 5, UNK, 6, 4] and side.ids.dtype == np.dtype("<u2")
    assert side.offsets.tolist() == [0, 2, 2, 5] and side.lengths.tolist() == [2, 0, 3]
    assert side.unknown == 1 and side.sentence(2).tolist() == [UNK, 6, 4]


def test_pairs_over_the_limit_are_discarded_counting_bos_and_eos(vocab: Vocabulary) -> None:
    src = token_cache.encode_lines(["the cat", "the cat sat", "cat"], vocab)
    tgt = token_cache.encode_lines(["die Katze", "die Katze", "die Katze sa@@ ß"], vocab)
    corpus = ParallelCorpus(src, tgt, max_len=4)  # 2 words + BOS + EOS fit
    assert len(corpus) == 1 and corpus.lengths().tolist() == [4]
    batch = corpus[[0]]
    assert batch.src.tolist() == [[BOS, 4, 5, EOS]] and batch.tgt.tolist() == [[BOS, 7, 8, EOS]]


def test_a_batch_is_padded_and_counts_the_predicted_target_tokens(vocab: Vocabulary) -> None:
    src = token_cache.encode_lines(["the", "the cat sat", "cat sat"], vocab)
    tgt = token_cache.encode_lines(["die Katze", "Katze", "die"], vocab)
    batch = ParallelCorpus(src, tgt, max_len=50)[[1, 0, 2]]
    assert batch.src.tolist() == [[BOS, 4, 5, 6, EOS], [BOS, 4, EOS, PAD, PAD], [BOS, 5, 6, EOS, PAD]]
    assert batch.src_lengths.tolist() == [5, 3, 4]
    assert batch.tgt.tolist() == [[BOS, 8, EOS, PAD], [BOS, 7, 8, EOS], [BOS, 7, EOS, PAD]]
    assert batch.tgt_tokens == 2 + 3 + 2  # everything after BOS, EOS included


def test_long_test_sources_are_truncated_not_dropped(vocab: Vocabulary) -> None:
    corpus = SourceCorpus.from_side(token_cache.encode_lines(["the cat sat the cat", "cat"], vocab), max_len=4)
    assert [s.tolist() for s in corpus.src] == [[BOS, 4, 5, EOS], [BOS, 5, EOS]]


def test_sides_of_different_length_and_foreign_vocabularies_are_refused(tmp_path: Path, vocab: Vocabulary) -> None:
    with pytest.raises(CorpusError, match="2 source sentences but 1 target sentences"):
        ParallelCorpus(token_cache.encode_lines(["the cat", "cat"], vocab),
                       token_cache.encode_lines(["die Katze"], vocab), max_len=50)
    foreign = token_cache.encode_lines(["Hund Baum", "Haus"], vocab)
    with pytest.raises(VocabularyMismatchError, match=r"f\.de: 3 of 3 tokens .* does not match"):
        check_unknown_rate(tmp_path / "f.de", foreign.unknown, len(foreign.ids))


def test_the_cache_maps_the_ids_prepare_wrote_and_a_stale_one_is_not_used(
        sample_layout: Wmt16Layout, tmp_path: Path) -> None:
    vocab = Vocabulary.load(sample_layout.vocab)
    cached = token_cache.load(sample_layout, vocab)
    assert cached.source == f"token cache {sample_layout.token_cache}"
    assert isinstance(cached.train_src.ids, np.memmap)
    encoded = token_cache.encode_file(sample_layout.train("en"), vocab)
    assert np.array_equal(cached.train_src.ids, encoded.ids) and np.array_equal(cached.train_src.offsets,
                                                                                 encoded.offsets)

    copy = Wmt16Layout(tmp_path)
    shutil.copytree(sample_layout.root, copy.root)
    with copy.train("de").open("a", encoding="utf-8") as f:
        f.write("ein Satz mehr\n")
    fallback = token_cache.load(copy, vocab)
    assert fallback.source.startswith("the BPE text files, encoded now (stale token cache: ")
    assert str(copy.train("de")) in fallback.source
    assert len(fallback.train_tgt) == len(cached.train_tgt) + 1
