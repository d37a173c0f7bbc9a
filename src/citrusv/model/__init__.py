"""The Citrus-V model: config, modeling, checkpoints, tiny random models.

Importing this package registers ``model_type="citrus_v"`` with transformers' Auto classes
(``AutoConfig``, ``AutoModel``, ``AutoModelForImageTextToText``).
"""

from .configuration_citrus_v import CitrusVConfig
from .modeling_citrus_v import (
    CitrusVForConditionalGeneration,
    CitrusVOutput,
    CitrusVPreTrainedModel,
    CitrusVSegmentationOutput,
    SegProjector,
)


def register_auto_classes() -> None:
    """Register Citrus-V with transformers' Auto classes (idempotent)."""
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

    try:
        AutoConfig.register("citrus_v", CitrusVConfig)
    except ValueError:  # already registered
        pass
    for auto in (AutoModel, AutoModelForImageTextToText):
        try:
            auto.register(CitrusVConfig, CitrusVForConditionalGeneration)
        except ValueError:
            pass


register_auto_classes()

__all__ = [
    "CitrusVConfig",
    "CitrusVForConditionalGeneration",
    "CitrusVOutput",
    "CitrusVPreTrainedModel",
    "CitrusVSegmentationOutput",
    "SegProjector",
    "register_auto_classes",
]
