"""GNMT (MLPerf rnn_translator) for today's PyTorch: data, models, train, inference.

Laid out like NVIDIA's DeepLearningExamples GNMT; `python -m translation.gnmt.main` trains.
"""
