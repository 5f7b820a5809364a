"""Benchmarks beyond ``hydranet-bench``: the node end to end, the CPU optimisation ablation."""
