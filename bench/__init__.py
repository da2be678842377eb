"""Benchmarks: workload generators and the runners behind `make bench-*`."""
