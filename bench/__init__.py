"""Benchmarks that print figures (issue #2): admission speed and placement quality against an ILP."""
