"""Normalised Bahdanau attention, as in the reference (GNMT v2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

MASK_VALUE = -65504.0  # the most negative fp16 value: masks padding in fp32 and fp16 alike


@dataclass
class Memory:
    """Encoder output the decoder attends to, with its key projection computed once."""

    keys: torch.Tensor  # (B, S, K)
    projected_keys: torch.Tensor  # (B, S, U): W_k k + b, computed once per sentence
    padding: torch.Tensor  # (B, S) True where padded

    def repeat_interleave(self, times: int) -> Memory:
        return Memory(*(t.repeat_interleave(times, dim=0) for t in (self.keys, self.projected_keys, self.padding)))


class BahdanauAttention(nn.Module):
    """score = (g * v / |v|) . tanh(W_q q + W_k k + b), softmax over unpadded keys."""

    def __init__(self, query_size: int, key_size: int, num_units: int, init_weight: float = 0.1) -> None:
        super().__init__()
        self.linear_q = nn.Linear(query_size, num_units, bias=False)
        self.linear_k = nn.Linear(key_size, num_units, bias=False)
        self.linear_att = nn.Parameter(torch.empty(num_units))
        self.normalize_scalar = nn.Parameter(torch.tensor(1.0 / math.sqrt(num_units)))
        self.normalize_bias = nn.Parameter(torch.zeros(num_units))
        for weight in (self.linear_q.weight, self.linear_k.weight, self.linear_att):
            nn.init.uniform_(weight, -init_weight, init_weight)

    def memory(self, keys: torch.Tensor, lengths: torch.Tensor) -> Memory:
        positions = torch.arange(keys.size(1), device=keys.device)
        padding = positions.unsqueeze(0) >= lengths.to(keys.device).unsqueeze(1)
        return Memory(keys, self.linear_k(keys) + self.normalize_bias, padding)

    def forward(self, query: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Q) -> context (B, T, K), weights (B, T, S)."""
        # (B, T, S, U) is the largest tensor of a decoder step: built once, tanh in place.
        projected = self.linear_q(query).unsqueeze(2) + memory.projected_keys.unsqueeze(1)
        v = self.linear_att / self.linear_att.norm() * self.normalize_scalar
        scores = projected.tanh_() @ v
        scores = scores.masked_fill(memory.padding.unsqueeze(1), MASK_VALUE)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory.keys), weights
