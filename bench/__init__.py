"""Benchmarks (not tests): `python -m bench.scan`; see bench/README.md."""
