"""Label-smoothed cross-entropy, summed over tokens and divided by the sentences in the batch."""

from __future__ import annotations

import torch

from translation.gnmt.data.vocabulary import PAD


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """(1 - eps) * NLL + eps * mean(-log p over the vocabulary); padding contributes nothing."""
    # At least fp32 (autocast's bf16 logits are widened), never narrower than the model (float64 in tests).
    logprobs = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
    nll = -logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    smooth = -logprobs.mean(dim=-1)
    loss = (1.0 - smoothing) * nll + smoothing * smooth
    return loss.masked_fill(target == PAD, 0.0).sum() / target.size(0)
