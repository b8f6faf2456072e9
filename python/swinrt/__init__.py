"""swinrt Python side: the PyTorch reference model, the checkpoint converter
and helpers for tests and benchmarks."""
