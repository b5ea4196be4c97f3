"""The GNMT network's structure, initialisation, padding handling and loss."""

from __future__ import annotations

import math

import pytest
import torch

from translation.gnmt.data.dataset import collate
from translation.gnmt.data.vocabulary import BOS, EOS, PAD
from translation.gnmt.models.gnmt import GNMT
from translation.gnmt.train.smoothing import label_smoothed_loss

pytestmark = [pytest.mark.slow, pytest.mark.training,
              pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(600)]


def _sentence(*ids: int) -> torch.Tensor:
    return torch.tensor([BOS, *ids, EOS])


def test_structure_follows_the_reference() -> None:
    model = GNMT(vocab_size=50, hidden_size=16, num_layers=4)
    encoder, decoder = model.encoder, model.decoder
    assert encoder.embedder is decoder.embedder is model.embedder  # one shared embedding
    assert decoder.classifier.weight is not model.embedder.weight  # untied projection
    assert encoder.layers[0].bidirectional and encoder.layers[1].input_size == 32
    assert [layer.input_size for layer in encoder.layers[2:]] == [16, 16]
    assert [layer.input_size for layer in decoder.layers] == [32, 32, 32]  # layer output + attention
    # The reference's init_lstm_: U(-0.1, 0.1) everywhere but the LSTMs' hidden-hidden biases, which start at 0.
    parameters = {n: p for n, p in model.named_parameters() if not n.startswith("decoder.attention.")}
    hidden_biases = {n for n in parameters if n.rsplit(".", 1)[-1].startswith("bias_hh")}
    assert len(hidden_biases) == 2 + 3 + 1 + 3  # bidirectional layer 1, encoder 2-4, decoder 1-4
    assert all(not parameters[n].any() for n in hidden_biases)
    assert all(0 < float(p.detach().abs().max()) <= 0.1 for n, p in parameters.items() if n not in hidden_biases)
    assert decoder.attention.normalize_scalar.item() == pytest.approx(1 / math.sqrt(16))
    assert not decoder.attention.linear_q.bias and not decoder.attention.linear_k.bias


def test_padding_does_not_change_a_sentence_encoding_or_its_scores() -> None:
    torch.manual_seed(0)
    model = GNMT(vocab_size=30, hidden_size=8, num_layers=4).double().eval()
    short, long = _sentence(5, 6, 7), _sentence(8, 9, 10, 11, 12, 13, 14)
    tgt = _sentence(20, 21)
    alone = collate([short])
    batched = collate([long, short])
    with torch.no_grad():
        logits_alone = model(alone.src, alone.src_lengths, tgt.unsqueeze(0)[:, :-1])
        logits_batched = model(batched.src, batched.src_lengths, torch.stack([tgt, tgt])[:, :-1])
        memory = model.encode(batched.src, batched.src_lengths)
    torch.testing.assert_close(logits_batched[1], logits_alone[0])
    assert memory.padding[1].tolist() == [False] * 5 + [True] * 4


def test_label_smoothing_sums_over_tokens_and_divides_by_sentences() -> None:
    logits = torch.tensor([[[2.0, 0.5, 0.1, -1.0], [0.3, 0.2, 0.1, 0.0]], [[1.0, 1.0, 3.0, 0.0], [0, 0, 0, 0]]])
    target = torch.tensor([[2, 3], [2, PAD]])
    logp = torch.log_softmax(logits, dim=-1)
    expected = 0.0
    for b, t in [(0, 0), (0, 1), (1, 0)]:  # the padded position is left out
        expected += 0.9 * -logp[b, t, target[b, t]] + 0.1 * -logp[b, t].mean()
    assert label_smoothed_loss(logits, target, 0.1) == pytest.approx(float(expected) / 2)
