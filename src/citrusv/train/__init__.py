"""Four-stage training: presets, parameter groups, the stage-3 gradient hook, data, the loop."""

from .config import COMPONENTS, TrainConfig, load_stage_config
from .hooks import SegmentationGradientScale
from .params import apply_freezing, dry_run_table, optimizer_groups

__all__ = ["COMPONENTS", "SegmentationGradientScale", "TrainConfig", "apply_freezing", "dry_run_table",
           "load_stage_config", "optimizer_groups"]
