"""Batched beam search, translation of a test set and its BLEU score."""
