"""Inference: one generation pass, masks at original resolution, batching."""

from .capture import SegHiddenStates, SegStateCapture
from .pipeline import CitrusVPipeline, CitrusVResult, GenerationSettings, SegmentationResult

__all__ = ["CitrusVPipeline", "CitrusVResult", "GenerationSettings", "SegHiddenStates", "SegStateCapture",
           "SegmentationResult"]
