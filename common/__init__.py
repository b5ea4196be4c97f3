"""Shared library: Backend.AI labels, Dockerfile label injection, and what benchmarks share."""
