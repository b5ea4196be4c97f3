"""GNMT encoder: bidirectional first layer over packed sequences, residuals from layer 3."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Encoder(nn.Module):
    def __init__(self, embedder: nn.Embedding, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"the GNMT encoder needs at least 2 layers, got {num_layers}")
        self.embedder = embedder
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            [
                nn.LSTM(hidden_size, hidden_size, batch_first=True, bidirectional=True),
                nn.LSTM(2 * hidden_size, hidden_size, batch_first=True),
                *(nn.LSTM(hidden_size, hidden_size, batch_first=True) for _ in range(num_layers - 2)),
            ]
        )

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """src (B, S), lengths (B,) -> (B, S, H); positions past a sentence's end hold zeros at layer 1."""
        x = self.dropout(self.embedder(src))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.layers[0](packed)
        x, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        x, _ = self.layers[1](self.dropout(x))
        for layer in self.layers[2:]:
            residual = x
            x, _ = layer(self.dropout(x))
            x = x + residual
        return x
