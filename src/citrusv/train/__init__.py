"""Four-stage training: presets, parameter groups, the stage-3 gradient hook, data, the loop.

Names load lazily so that ``citrusv.train.config`` (read by the CLI to build its parser) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["COMPONENTS", "SegmentationGradientScale", "TrainConfig", "apply_freezing", "dry_run_table",
           "load_stage_config", "optimizer_groups"]

_HOMES = {
    "COMPONENTS": ".config", "TrainConfig": ".config", "load_stage_config": ".config",
    "SegmentationGradientScale": ".hooks",
    "apply_freezing": ".params", "dry_run_table": ".params", "optimizer_groups": ".params",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
