"""Benchmarks of the webhook: in-process review, HTTP load, cold start and memory.

`python -m benchmarks` runs them all and prints one table per measurement, then the goals;
`--quick` runs each with few iterations, to check that the suite works.
"""
