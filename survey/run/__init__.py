"""A survey run: its arguments, plan, restart state, Ray stages and pipeline, candidates, manifest and summary."""
