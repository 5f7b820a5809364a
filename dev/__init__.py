"""Benchmark and reliability rigs, run from a source checkout (``python -m dev...``).

Not installed: a checkout has the package, the tests and these rigs side by side.
"""
