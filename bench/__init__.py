"""Benchmarks that print figures (never pass/fail): ``make bench``."""
