"""Benchmarks: one command each, printing their numbers (see docs/benchmarks.md)."""
