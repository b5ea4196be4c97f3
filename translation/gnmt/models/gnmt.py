"""The whole GNMT: one embedding shared by encoder and decoder inputs, untied output projection."""

from __future__ import annotations

import torch
from torch import nn

from translation.gnmt.data.vocabulary import PAD
from translation.gnmt.models.attention import Memory
from translation.gnmt.models.decoder import Decoder, LSTMState
from translation.gnmt.models.encoder import Encoder


class GNMT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 1024,
        num_layers: int = 4,
        dropout: float = 0.2,
        init_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedder = nn.Embedding(vocab_size, hidden_size, padding_idx=PAD)
        self.encoder = Encoder(self.embedder, hidden_size, num_layers, dropout)
        self.decoder = Decoder(self.embedder, vocab_size, hidden_size, num_layers, dropout)
        # The reference (seq2seq/utils.py init_lstm_) draws the embedding, the classifier and every LSTM
        # weight and input bias from U(-0.1, 0.1) and starts the LSTMs' hidden-hidden biases at zero;
        # the attention initialises itself (its scalar and bias are not uniform).
        attention = {id(p) for p in self.decoder.attention.parameters()}
        for name, parameter in self.named_parameters():
            if id(parameter) in attention:
                continue
            if name.rsplit(".", 1)[-1].startswith("bias_hh"):
                nn.init.zeros_(parameter)
            else:
                nn.init.uniform_(parameter, -init_weight, init_weight)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        return self.decoder.attention.memory(self.encoder(src, src_lengths), src_lengths)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) for target inputs BOS ... (without the final EOS)."""
        logits, _, _ = self.decoder(tgt_in, self.encode(src, src_lengths))
        return logits

    def step(
        self, tokens: torch.Tensor, memory: Memory, state: list[LSTMState] | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[LSTMState]]:
        """One decoding step: tokens (N,) -> log-probabilities (N, V), attention (N, S), new state."""
        logits, weights, state = self.decoder(tokens.unsqueeze(1), memory, state)
        return torch.log_softmax(logits.squeeze(1).float(), dim=-1), weights.squeeze(1).float(), state
