"""Four-stage training: presets, parameter groups, the stage-3 gradient hook, data, the loop.

Names load lazily so that ``citrusv.train.config`` (read by the CLI to build its parser) does not
import torch.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["COMPONENTS", "SegmentationGradientScale", "TrainConfig", "apply_freezing", "dry_run_table",
           "load_stage_config", "optimizer_groups"]

_HOMES = {
    "COMPONENTS": ".config", "TrainConfig": ".config", "load_stage_config": ".config",
    "SegmentationGradientScale": ".hooks",
    "apply_freezing": ".params", "dry_run_table": ".params", "optimizer_groups": ".params",
}


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES, globals())
