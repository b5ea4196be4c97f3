"""Parallel and source-only corpora read from BPE files, and the padding collate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from translation.gnmt.data.vocabulary import PAD, UNK, Vocabulary, check_unknown_rate


class CorpusError(ValueError):
    """A corpus file is missing, empty, or its two sides disagree."""


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CorpusError(f"{path}: corpus file missing")
    with path.open(encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines]


@dataclass
class ParallelCorpus:
    """Encoded pairs; pairs longer than `max_len` tokens (BOS/EOS included) are discarded."""

    src: list[torch.Tensor]
    tgt: list[torch.Tensor]

    @classmethod
    def load(cls, src_path: Path, tgt_path: Path, vocab: Vocabulary, max_len: int) -> ParallelCorpus:
        src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
        if len(src_lines) != len(tgt_lines):
            raise CorpusError(
                f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}: "
                "expected one translation per line"
            )
        src, tgt = [], []
        unknown, total = [0, 0], [0, 0]
        for s_line, t_line in zip(src_lines, tgt_lines, strict=True):
            s, t = vocab.encode(s_line), vocab.encode(t_line)
            for side, ids in enumerate((s, t)):
                unknown[side] += ids.count(UNK)
                total[side] += len(ids) - 2
            if len(s) <= max_len and len(t) <= max_len:
                src.append(torch.tensor(s, dtype=torch.int64))
                tgt.append(torch.tensor(t, dtype=torch.int64))
        for side, path in enumerate((src_path, tgt_path)):
            check_unknown_rate(path, unknown[side], total[side])
        if not src:
            raise CorpusError(f"{src_path}: no sentence pair of at most {max_len} tokens")
        return cls(src, tgt)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src[index], self.tgt[index]

    def lengths(self) -> torch.Tensor:
        """max(source, target) length of each pair: what the buckets group by."""
        return torch.tensor([max(len(s), len(t)) for s, t in zip(self.src, self.tgt, strict=True)])


@dataclass
class SourceCorpus:
    """Test sources in file order; sentences longer than `max_len` are truncated (EOS kept)."""

    src: list[torch.Tensor]

    @classmethod
    def load(cls, path: Path, vocab: Vocabulary, max_len: int) -> SourceCorpus:
        lines = _read_lines(path)
        if not lines:
            raise CorpusError(f"{path}: test source is empty")
        encoded = []
        for line in lines:
            ids = vocab.encode(line)
            if len(ids) > max_len:
                ids = [*ids[: max_len - 1], ids[-1]]
            encoded.append(torch.tensor(ids, dtype=torch.int64))
        return cls(encoded)

    def __len__(self) -> int:
        return len(self.src)


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) padded
    src_lengths: torch.Tensor  # (B,)
    tgt: torch.Tensor | None = None  # (B, T) padded, BOS ... EOS

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=True),
            self.src_lengths.to(device),
            None if self.tgt is None else self.tgt.to(device, non_blocking=True),
        )


def pad(sequences: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=PAD)


def collate_pairs(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    src, tgt = zip(*pairs, strict=True)
    return collate(list(src), list(tgt))


def collate(src: list[torch.Tensor], tgt: list[torch.Tensor] | None = None) -> Batch:
    lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)
    return Batch(pad(src), lengths, None if tgt is None else pad(tgt))
