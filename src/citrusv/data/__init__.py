"""Data foundation: the sample schema, JSONL IO, the tag taxonomy and batch collation."""

from .jsonl import JsonlAppender, iter_samples, read_samples, write_samples
from .schema import Objects, Sample, SampleError, parse_sample

__all__ = ["JsonlAppender", "Objects", "Sample", "SampleError", "iter_samples", "parse_sample", "read_samples",
           "write_samples"]
