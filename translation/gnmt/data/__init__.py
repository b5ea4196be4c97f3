"""Vocabulary, parallel corpora and the bucketing sampler."""
