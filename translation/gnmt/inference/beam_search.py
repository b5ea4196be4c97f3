"""Batched beam search with GNMT's length normalisation and coverage penalty, and greedy search.

All beams of all sentences advance together as one (batch * beam) decoder batch. A finished
hypothesis stays in its beam with a frozen score, length and attention sum, so a sentence's
result does not depend on the other sentences in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translation.gnmt.data.vocabulary import BOS, EOS, PAD
from translation.gnmt.models.gnmt import GNMT


@dataclass(frozen=True)
class BeamSettings:
    beam_size: int = 5
    max_len: int = 150
    len_norm_factor: float = 0.6
    len_norm_const: float = 5.0
    cov_penalty_factor: float = 0.1


def _strip(row: torch.Tensor, length: int) -> list[int]:
    tokens = row[:length].tolist()
    return tokens[:-1] if tokens and tokens[-1] == EOS else tokens


@torch.no_grad()
def greedy_search(model: GNMT, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int) -> list[list[int]]:
    memory = model.encode(src, src_lengths)
    batch = src.size(0)
    words = torch.full((batch,), BOS, dtype=torch.int64, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    lengths = torch.zeros(batch, dtype=torch.int64, device=src.device)
    out = torch.full((batch, max_len), PAD, dtype=torch.int64, device=src.device)
    state = None
    for t in range(max_len):
        logprobs, _, state = model.step(words, memory, state)
        words = logprobs.argmax(dim=-1)
        lengths += ~finished
        out[:, t] = words.masked_fill(finished, PAD)
        finished |= words == EOS
        if finished.all():
            break
    return [_strip(out[i], int(lengths[i])) for i in range(batch)]


@torch.no_grad()
def beam_search(model: GNMT, src: torch.Tensor, src_lengths: torch.Tensor, settings: BeamSettings) -> list[list[int]]:
    """Best hypothesis per sentence (without BOS/EOS), ranked by score / lp(len) + cp."""
    k, device = settings.beam_size, src.device
    batch = src.size(0)
    n = batch * k
    memory = model.encode(src, src_lengths).repeat_interleave(k)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start equal: expand only the first
    words = torch.full((n,), BOS, dtype=torch.int64, device=device)
    tokens = torch.full((n, settings.max_len), PAD, dtype=torch.int64, device=device)
    lengths = torch.zeros(n, dtype=torch.int64, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    attention_sum = torch.zeros(n, memory.keys.size(1), device=device)
    base = (torch.arange(batch, device=device) * k).unsqueeze(1)
    state = None
    for t in range(settings.max_len):
        logprobs, weights, state = model.step(words, memory, state)
        vocab = logprobs.size(1)
        attention_sum += weights.masked_fill(finished.unsqueeze(1), 0.0)
        lengths += ~finished
        # A finished hypothesis has exactly one continuation (EOS) that costs nothing.
        frozen = torch.full((vocab,), float("-inf"), device=device)
        frozen[EOS] = 0.0
        logprobs = torch.where(finished.unsqueeze(1), frozen, logprobs)
        candidates = scores.view(n, 1) + logprobs
        norm = ((settings.len_norm_const + lengths.float()) / (settings.len_norm_const + 1.0)) ** (
            settings.len_norm_factor
        )
        coverage = torch.log(attention_sum.clamp(max=1.0)).masked_fill(memory.padding, 0.0)
        coverage = coverage.masked_fill(torch.isinf(coverage), 0.0).sum(dim=1)
        ranked = candidates / norm.unsqueeze(1) + settings.cov_penalty_factor * coverage.unsqueeze(1)
        _, index = ranked.view(batch, k * vocab).topk(k, dim=1)
        rows = (base + index // vocab).view(n)
        words = (index % vocab).view(n)
        scores = candidates.view(batch, k * vocab).gather(1, index)
        tokens, lengths, finished, attention_sum = (x[rows] for x in (tokens, lengths, finished, attention_sum))
        state = [(h[:, rows], c[:, rows]) for h, c in state]
        tokens[:, t] = torch.where(finished, PAD, words)
        finished = finished | (words == EOS)
        if finished.all():
            break
    # topk sorts, so beam 0 holds each sentence's best-ranked hypothesis.
    best = base.view(batch)
    return [_strip(tokens[int(r)], int(lengths[int(r)])) for r in best]
