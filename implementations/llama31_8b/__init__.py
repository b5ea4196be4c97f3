"""Llama 3.1 8B, the current suite's single-node LLM pretraining benchmark: its dataset."""
