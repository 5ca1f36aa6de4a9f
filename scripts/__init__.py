"""Benchmarks and figures that are run by hand: python -m scripts.NAME --help."""
