"""Learning on the sample, and batched beam search against greedy and sentence-by-sentence decoding."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gnmt.training_helpers import TrainedSample
from translation import token_cache
from translation.gnmt.data.dataset import SourceCorpus, collate
from translation.gnmt.data.vocabulary import BOS, EOS
from translation.gnmt.inference.beam_search import BeamSettings, beam_search, greedy_search
from translation.gnmt.models.gnmt import GNMT
from translation.layout import Wmt16Layout

pytestmark = [pytest.mark.slow, pytest.mark.training,
              pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(1200)]


def _test_sources(layout: Wmt16Layout, trained: TrainedSample, count: int) -> list[torch.Tensor]:
    return SourceCorpus.from_side(token_cache.load(layout, trained.vocab).test_src, max_len=150).src[:count]


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


def reference_beam_search(model: GNMT, sentence: torch.Tensor, s: BeamSettings) -> list[int]:
    """The reference's SequenceGenerator.beam_search for one sentence, written out beam by beam.

    Scores are float32 tensors, as in the reference. Rows keep their attention sums when hypotheses
    move between rows; normalisation and coverage come once, when every beam has ended.
    """
    k = s.beam_size
    memory = model.encode(sentence.unsqueeze(0), torch.tensor([len(sentence)]))
    beams = [{"tokens": [BOS], "score": torch.tensor(0.0), "length": 1, "state": None} for _ in range(k)]
    coverage = [torch.zeros(len(sentence)) for _ in range(k)]  # one per row, never reordered
    for idx in range(1, s.max_len):
        ended = [beam["tokens"][-1] == EOS for beam in beams]
        for beam, done in zip(beams, ended, strict=True):
            beam["length"] += 0 if done else 1
        candidates = []
        for row, (beam, done) in enumerate(zip(beams, ended, strict=True)):
            logprobs, attention, state = model.step(torch.tensor([beam["tokens"][-1]]), memory, beam["state"])
            if not done:
                coverage[row] += attention[0]
            if idx == 1 and row > 0:
                continue  # all beams start as the same BOS
            if done:
                options = [(torch.tensor(0.0), EOS)]
            else:
                top = logprobs[0].topk(k)
                options = list(zip(top.values, top.indices.tolist(), strict=True))
            candidates += [(beam["score"] + logprob, row, word, state) for logprob, word in options]
        candidates.sort(key=lambda c: -float(c[0]))
        beams = [{"tokens": [*beams[row]["tokens"], word], "score": score, "length": beams[row]["length"],
                  "state": state} for score, row, word, state in candidates[:k]]
        if all(ended):
            for row, beam in enumerate(beams):
                norm = ((s.len_norm_const + torch.tensor(float(beam["length"]))) / (s.len_norm_const + 1.0)) ** (
                    s.len_norm_factor)
                penalty = coverage[row].clamp(0.0, 1.0).log()
                penalty = penalty.masked_fill(torch.isinf(penalty), 0.0).sum()
                beam["score"] = beam["score"] / norm + s.cov_penalty_factor * penalty
            break
    best = max(range(k), key=lambda row: float(beams[row]["score"]))
    words = beams[best]["tokens"][1:]
    return words[: words.index(EOS)] if EOS in words else words


CASES = {
    "reference": (0.0, BeamSettings(beam_size=5, max_len=40)),
    "short": (0.0, BeamSettings(beam_size=5, max_len=8)),  # most sentences reach the limit before their beams end
    # EOS made likelier: hypotheses end at many lengths, so length counting and coverage decide more.
    "eos-biased": (1.5, BeamSettings(beam_size=5, max_len=40)),
    "eos-biased-strong-penalties": (1.5, BeamSettings(beam_size=4, max_len=40, len_norm_factor=2.0,
                                                      cov_penalty_factor=1.0)),
}


@pytest.mark.parametrize("case", CASES)
def test_batched_beam_search_chooses_what_the_reference_chooses(
    trained_sample: TrainedSample, sample_layout: Wmt16Layout, case: str
) -> None:
    eos_bias, settings = CASES[case]
    model = copy.deepcopy(trained_sample.model).double()
    with torch.no_grad():
        model.decoder.classifier.bias[EOS] += eos_bias
    sources = _test_sources(sample_layout, trained_sample, 32)
    batch = collate(sources)
    batched = beam_search(model, batch.src, batch.src_lengths, settings)
    with torch.no_grad():
        reference = [reference_beam_search(model, s, settings) for s in sources]
    assert batched == reference
    assert sum(map(len, batched)) > 3 * len(sources)  # real translations, not empty ones
