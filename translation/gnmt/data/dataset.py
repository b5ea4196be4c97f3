"""Training pairs and test sources over the token-id arrays of translation.token_cache, and padding.

A training batch is gathered straight from the flat id arrays (memory-mapped when they come from
the cache) with a handful of vectorised numpy operations: nothing per sentence is kept in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from translation.gnmt.data.vocabulary import BOS, EOS, PAD
from translation.token_cache import Side


class CorpusError(ValueError):
    """A corpus is empty, or its two sides disagree."""


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) padded, BOS ... EOS
    src_lengths: torch.Tensor  # (B,)
    tgt: torch.Tensor | None = None  # (B, T) padded, BOS ... EOS
    tgt_tokens: int = 0  # target tokens the model predicts (EOS included, BOS not)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=True),
            self.src_lengths.to(device),
            None if self.tgt is None else self.tgt.to(device, non_blocking=True),
            self.tgt_tokens,
        )

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True) for custom batch types."""
        return Batch(self.src.pin_memory(), self.src_lengths, None if self.tgt is None else self.tgt.pin_memory(),
                     self.tgt_tokens)


def padded(side: Side, rows: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Sentences `rows` of `side` as a (B, T) array BOS ids EOS PAD..., and their lengths (BOS/EOS included)."""
    starts = side.offsets[rows]
    counts = side.offsets[rows + 1] - starts
    out = np.full((len(rows), int(counts.max()) + 2), PAD, dtype=np.int64)
    out[:, 0] = BOS
    row_of_token = np.repeat(np.arange(len(rows)), counts)
    first_of_row = np.repeat(np.cumsum(counts) - counts, counts)
    position = np.arange(int(counts.sum())) - first_of_row
    out[row_of_token, position + 1] = side.ids[np.repeat(starts, counts) + position]
    out[np.arange(len(rows)), counts + 1] = EOS
    return torch.from_numpy(out), counts + 2


class ParallelCorpus:
    """Sentence pairs; pairs longer than `max_len` tokens (BOS/EOS included) on either side are discarded.

    `corpus[indices]` is the padded Batch of those pairs, so a DataLoader over a batch sampler
    (`DataLoader(corpus, sampler=batches, batch_size=None)`) builds each batch in one call.
    """

    def __init__(self, src: Side, tgt: Side, max_len: int) -> None:
        if len(src) != len(tgt):
            raise CorpusError(f"{len(src)} source sentences but {len(tgt)} target sentences: expected pairs")
        src_len, tgt_len = src.lengths + 2, tgt.lengths + 2
        self.kept = np.flatnonzero((src_len <= max_len) & (tgt_len <= max_len))
        if not len(self.kept):
            raise CorpusError(f"no sentence pair of at most {max_len} tokens")
        self.src, self.tgt = src, tgt
        self._pair_lengths = np.maximum(src_len, tgt_len)[self.kept]

    def __len__(self) -> int:
        return len(self.kept)

    def lengths(self) -> torch.Tensor:
        """max(source, target) length of each pair: what the buckets group by."""
        return torch.from_numpy(self._pair_lengths)

    def __getitem__(self, indices: list[int]) -> Batch:
        rows = self.kept[np.asarray(indices)]
        src, src_lengths = padded(self.src, rows)
        tgt, tgt_lengths = padded(self.tgt, rows)
        return Batch(src, torch.from_numpy(src_lengths), tgt, int(tgt_lengths.sum() - len(rows)))


def collate(src: list[torch.Tensor]) -> Batch:
    """Sentences (BOS ... EOS each) padded into one source batch."""
    lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)
    return Batch(torch.nn.utils.rnn.pad_sequence(src, batch_first=True, padding_value=PAD), lengths)


@dataclass
class SourceCorpus:
    """Test sources in file order, BOS ... EOS; sentences longer than `max_len` are truncated (EOS kept)."""

    src: list[torch.Tensor]

    @classmethod
    def from_side(cls, side: Side, max_len: int) -> SourceCorpus:
        if not len(side):
            raise CorpusError("the test source is empty")
        sentences = []
        for i in range(len(side)):
            ids = [BOS, *side.sentence(i).tolist(), EOS]
            if len(ids) > max_len:
                ids = [*ids[: max_len - 1], EOS]
            sentences.append(torch.tensor(ids, dtype=torch.int64))
        return cls(sentences)

    def __len__(self) -> int:
        return len(self.src)
