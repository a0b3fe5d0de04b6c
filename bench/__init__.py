"""Benchmarks (``make bench``): vidsift side by side with what a user would otherwise use.

Figures are printed, not asserted: timing belongs in a benchmark, never in a test.
"""
