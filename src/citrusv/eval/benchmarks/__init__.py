"""Benchmark loaders: the 16 benchmarks of the Citrus-V paper (23 registry entries) read from
their public release files, each item carrying the reference prompt.

>>> from citrusv.eval.benchmarks import load_benchmark
>>> items = load_benchmark("slake", "/data/eval")          # doctest: +SKIP

Layout, sources, licences and row counts: ``docs/eval-data.md``.
"""

from .registry import BENCHMARKS, CAPABILITIES, BenchmarkSpec, get_benchmark, load_benchmark, missing_files

__all__ = ["BENCHMARKS", "CAPABILITIES", "BenchmarkSpec", "get_benchmark", "load_benchmark", "missing_files"]
