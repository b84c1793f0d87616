"""Benchmarks that print JSON: the engine itself and peers run on the same checkpoint."""
