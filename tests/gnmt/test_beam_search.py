"""Learning on the sample, and batched beam search against greedy and sentence-by-sentence decoding."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gnmt.training_helpers import TrainedSample
from translation.gnmt.data.dataset import SourceCorpus, collate
from translation.gnmt.inference.beam_search import BeamSettings, beam_search, greedy_search
from translation.gnmt.models.gnmt import GNMT
from translation.layout import SRC_LANG, Wmt16Layout

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.usefixtures("one_torch_thread")]


def _test_sources(layout: Wmt16Layout, trained: TrainedSample, count: int) -> list[torch.Tensor]:
    return SourceCorpus.load(layout.test_bpe(SRC_LANG), trained.vocab, max_len=150).src[:count]


def test_small_model_learns_the_sample(trained_sample: TrainedSample) -> None:
    # Seed 1, 5 epochs of 90 steps (batch 32, hidden 64, beam 5): measured BLEU 0.0 untrained, 17.4 trained.
    assert trained_sample.untrained_bleu < 2.0
    assert trained_sample.trained_bleu > 10.0
    assert trained_sample.trained_bleu > trained_sample.untrained_bleu + 8.0


@pytest.mark.parametrize("which", ["trained", "untrained"])
def test_beam_of_one_is_greedy(which: str, trained_sample: TrainedSample, sample_layout: Wmt16Layout) -> None:
    if which == "trained":
        model = trained_sample.model
    else:
        torch.manual_seed(3)
        model = GNMT(len(trained_sample.vocab), hidden_size=64).eval()
    batch = collate(_test_sources(sample_layout, trained_sample, 64))
    greedy = greedy_search(model, batch.src, batch.src_lengths, max_len=40)
    beam = beam_search(model, batch.src, batch.src_lengths, BeamSettings(beam_size=1, max_len=40))
    assert beam == greedy
    assert sum(map(len, greedy)) > 0


def test_batched_beam_search_equals_one_sentence_at_a_time(
    trained_sample: TrainedSample, sample_layout: Wmt16Layout
) -> None:
    # float64, so that batched and single GEMMs cannot differ in the last bit and flip a choice.
    model = copy.deepcopy(trained_sample.model).double()
    sources = _test_sources(sample_layout, trained_sample, 24)
    settings = BeamSettings(beam_size=5, max_len=40)
    batch = collate(sources)
    together = beam_search(model, batch.src, batch.src_lengths, settings)
    alone = [beam_search(model, s.unsqueeze(0), torch.tensor([len(s)]), settings)[0] for s in sources]
    assert together == alone
    assert len({len(s) for s in sources}) > 3  # the batch really mixes lengths (and padding)
