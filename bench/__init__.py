"""Benchmarks: accuracy and latency per runtime, provider and batch size."""
