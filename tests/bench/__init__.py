"""Benchmarks: commands that print figures and save JSON and a plot (not collected as tests)."""
