"""Translate a test set in length-sorted batches and score it; workers split the sentences."""

from __future__ import annotations

from collections.abc import Callable

import torch

from translation.gnmt.data.dataset import SourceCorpus, collate
from translation.gnmt.data.vocabulary import Vocabulary
from translation.gnmt.inference.beam_search import BeamSettings, beam_search
from translation.gnmt.models.gnmt import GNMT

Gather = Callable[[dict[int, str]], dict[int, str]]


def _local(found: dict[int, str]) -> dict[int, str]:
    return found


@torch.no_grad()
def translate(
    model: GNMT,
    corpus: SourceCorpus,
    vocab: Vocabulary,
    settings: BeamSettings,
    batch_size: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    gather: Gather = _local,
) -> list[str]:
    """BPE text of every sentence, in file order. Sorting by length keeps padding small."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(corpus)), key=lambda i: len(corpus.src[i]), reverse=True)[rank::world_size]
    found: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        ids = order[start : start + batch_size]
        batch = collate([corpus.src[i] for i in ids]).to(device)
        outputs = beam_search(model, batch.src, batch.src_lengths, settings)
        found.update((i, vocab.to_bpe_text(out)) for i, out in zip(ids, outputs, strict=True))
    model.train(was_training)
    everything = gather(found)
    return [everything[i] for i in range(len(corpus))]
