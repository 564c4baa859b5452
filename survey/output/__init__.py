"""Outputs: the paths of a run directory, catalogue schemas, the resumable HATS writer, queries and plots."""
