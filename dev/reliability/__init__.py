"""Reliability rigs: fuzzing the node, soaking it, and the report of both (docs/reliability.md)."""
