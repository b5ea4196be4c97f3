"""Beam search as the reference's `seq2seq/inference/beam_search.py` decides, batched; and greedy search.

What the reference does, and so what this does:
- beams are ranked by their raw summed log-probability; length normalisation ((5 + len) / 6) ** 0.6
  and the coverage penalty 0.1 * sum(log(min(attention sum, 1))) (log 0 counted as 0) are applied
  once, to every beam of a sentence, when all its beams have ended with EOS;
- a length counts BOS, the words and EOS;
- a beam that ended keeps its score: its only continuation is EOS at no cost;
- the attention sums stay with their row of the beam when the hypotheses change rows (the
  reference never reorders them), so a hypothesis may be penalised with another one's coverage;
- at most `max_len - 1` tokens are generated; a sentence whose beams have not all ended by then, or
  end only at the last step, keeps its raw scores;
- the best beam of each sentence by final score is its translation.
All beams of all sentences advance as one (sentences x beam) decoder batch; a sentence leaves the
batch once it ends, as in the reference. Picking the best `beam` of all beam x vocabulary candidates
with one top-k chooses what the reference's top-k per beam, then top-k of k x k, chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translation.gnmt.data.vocabulary import BOS, EOS
from translation.gnmt.models.attention import Memory
from translation.gnmt.models.gnmt import GNMT


@dataclass(frozen=True)
class BeamSettings:
    beam_size: int = 5
    max_len: int = 150  # including BOS, as the reference's max_seq_len
    len_norm_factor: float = 0.6
    len_norm_const: float = 5.0
    cov_penalty_factor: float = 0.1


def _words(row: torch.Tensor) -> list[int]:
    """Generated tokens up to (without) the first EOS."""
    tokens = row.tolist()
    return tokens[: tokens.index(EOS)] if EOS in tokens else tokens


@torch.no_grad()
def greedy_search(model: GNMT, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int) -> list[list[int]]:
    memory = model.encode(src, src_lengths)
    batch = src.size(0)
    words = torch.full((batch,), BOS, dtype=torch.int64, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    out = torch.full((batch, max_len - 1), EOS, dtype=torch.int64, device=src.device)
    state = None
    for t in range(max_len - 1):
        logprobs, _, state = model.step(words, memory, state)
        words = logprobs.argmax(dim=-1).masked_fill(finished, EOS)
        out[:, t] = words
        finished |= words == EOS
        if finished.all():
            break
    return [_words(row) for row in out]


def _select(rows: torch.Tensor, memory: Memory, state: list) -> tuple[Memory, list]:
    return Memory(memory.keys[rows], memory.projected_keys[rows], memory.padding[rows]), [
        (h[:, rows], c[:, rows]) for h, c in state]


@torch.no_grad()
def beam_search(model: GNMT, src: torch.Tensor, src_lengths: torch.Tensor, settings: BeamSettings) -> list[list[int]]:
    """Best hypothesis per sentence, without BOS and EOS (see the module doc for the ranking)."""
    k, device = settings.beam_size, src.device
    batch = src.size(0)
    memory = model.encode(src, src_lengths).repeat_interleave(k)
    steps = settings.max_len - 1
    # Per row of the sentences still decoding (sentence-major, k rows each):
    active = torch.arange(batch, device=device)
    words = torch.full((batch * k,), BOS, dtype=torch.int64, device=device)
    scores = torch.zeros(batch * k, device=device)
    lengths = torch.ones(batch * k, dtype=torch.int64, device=device)
    tokens = torch.full((batch * k, steps), EOS, dtype=torch.int64, device=device)
    coverage = torch.zeros(batch * k, memory.keys.size(1), device=device)
    state = None
    # What each sentence ends with:
    final_scores = torch.zeros(batch, k, device=device)
    final_tokens = torch.full((batch, k, steps), EOS, dtype=torch.int64, device=device)
    vocab = model.decoder.classifier.out_features
    frozen = torch.full((vocab,), float("-inf"), device=device)  # an ended beam's one continuation: EOS, free
    frozen[EOS] = 0.0
    for t in range(steps):
        if len(active) == 0:
            break
        ended = words == EOS
        terminating = ended.view(-1, k).all(dim=1)
        lengths += ~ended
        logprobs, attention, state = model.step(words, memory, state)
        coverage += attention.masked_fill(ended.unsqueeze(1), 0.0)
        candidates = scores.unsqueeze(1) + torch.where(ended.unsqueeze(1), frozen, logprobs)
        if t == 0:  # all beams start as the same BOS: expand only the first
            candidates.view(-1, k, vocab)[:, 1:] = float("-inf")
        best, index = candidates.view(-1, k * vocab).topk(k, dim=1)
        base = (torch.arange(len(active), device=device) * k).unsqueeze(1)
        rows = (base + index // vocab).view(-1)
        words = (index % vocab).view(-1)
        scores = best.view(-1)
        tokens, lengths = tokens[rows], lengths[rows]
        tokens[:, t] = words
        state = [(h[:, rows], c[:, rows]) for h, c in state]
        if terminating.any():
            done = terminating.repeat_interleave(k)
            norm = ((settings.len_norm_const + lengths[done].float()) / (settings.len_norm_const + 1.0)) ** (
                settings.len_norm_factor)
            penalty = coverage[done].clamp(0.0, 1.0).log()
            penalty = penalty.masked_fill(torch.isinf(penalty), 0.0).sum(dim=1)
            final = scores[done] / norm + settings.cov_penalty_factor * penalty
            final_scores[active[terminating]] = final.view(-1, k)
            final_tokens[active[terminating]] = tokens[done].view(-1, k, steps)
            keep = ~done
            active = active[~terminating]
            words, scores, lengths, tokens, coverage = (x[keep] for x in (words, scores, lengths, tokens, coverage))
            memory, state = _select(keep, memory, state)
    final_scores[active] = scores.view(-1, k)
    final_tokens[active] = tokens.view(-1, k, steps)
    best_beam = final_scores.argmax(dim=1)
    return [_words(final_tokens[i, int(best_beam[i])]) for i in range(batch)]
