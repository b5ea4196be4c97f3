"""GNMT decoder: attention on layer 1's output feeds layers 2..n; residuals from layer 3."""

from __future__ import annotations

import torch
from torch import nn

from translation.gnmt.models.attention import BahdanauAttention, Memory

LSTMState = tuple[torch.Tensor, torch.Tensor]


class Decoder(nn.Module):
    def __init__(
        self, embedder: nn.Embedding, vocab_size: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"the GNMT decoder needs at least 2 layers, got {num_layers}")
        self.embedder = embedder
        self.dropout = nn.Dropout(dropout)
        self.attention_rnn = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.attention = BahdanauAttention(hidden_size, hidden_size, hidden_size)
        self.layers = nn.ModuleList(
            nn.LSTM(2 * hidden_size, hidden_size, batch_first=True) for _ in range(num_layers - 1)
        )
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, tgt: torch.Tensor, memory: Memory, state: list[LSTMState] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[LSTMState]]:
        """tgt (B, T) -> logits (B, T, V), attention weights (B, T, S), the LSTM states after T steps."""
        state = state or [None] * (len(self.layers) + 1)
        x, first = self.attention_rnn(self.dropout(self.embedder(tgt)), state[0])
        context, weights = self.attention(x, memory)
        new_state = [first]
        x, hidden = self.layers[0](self.dropout(torch.cat((x, context), dim=2)), state[1])
        new_state.append(hidden)
        for layer, layer_state in zip(self.layers[1:], state[2:], strict=True):
            residual = x
            x, hidden = layer(self.dropout(torch.cat((x, context), dim=2)), layer_state)
            new_state.append(hidden)
            x = x + residual
        return self.classifier(x), weights, new_state
