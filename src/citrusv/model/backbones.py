"""The multimodal LLM backbones Citrus-V can sit on, behind one interface.

Everything that differs between Qwen2.5-VL and Qwen3-VL lives in one ``BackboneSpec`` per
``model_type``: the transformers class, the parameter-name prefixes of each component (used for
freezing and per-component learning rates), and the coordinate space the backbone writes boxes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BoxSpace = Literal["resized_px", "norm1000", "orig_px"]


@dataclass(frozen=True)
class BackboneSpec:
    """Facts about one transformers multimodal backbone.

    Attributes:
        model_type: transformers ``model_type`` of the backbone config (``"qwen2_5_vl"``).
        class_name: name of the ``...ForConditionalGeneration`` class in ``transformers``.
        language_model_prefix: parameter prefix of the LLM inside the backbone (in-memory v5 names).
        vision_tower_prefix: prefix of the ViT, aligner included.
        aligner_prefixes: prefixes of the ViT→LLM mergers (the "aligner" of the paper's Table 4).
        lm_head_prefix: prefix of the output projection.
        bbox_2d_space: coordinate space of ``"bbox_2d"`` JSON boxes the backbone emits.
        image_mean, image_std: per-channel normalisation of the backbone's ViT input.
    """

    model_type: str
    class_name: str
    language_model_prefix: str = "model.language_model"
    vision_tower_prefix: str = "model.visual"
    aligner_prefixes: tuple[str, ...] = ("model.visual.merger",)
    lm_head_prefix: str = "lm_head"
    bbox_2d_space: BoxSpace = "resized_px"
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    def model_class(self):
        import transformers

        return getattr(transformers, self.class_name)


BACKBONES: dict[str, BackboneSpec] = {
    # Qwen2.5-VL writes absolute pixel boxes in the smart-resized image (Citrus-V keeps this).
    "qwen2_5_vl": BackboneSpec("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", bbox_2d_space="resized_px"),
    # Qwen3-VL went back to boxes relative to the image on a 0..1000 grid.
    # Qwen3-VL adds "deepstack" mergers feeding ViT features into early LLM layers.
    "qwen3_vl": BackboneSpec("qwen3_vl", "Qwen3VLForConditionalGeneration", bbox_2d_space="norm1000",
                             aligner_prefixes=("model.visual.merger", "model.visual.deepstack_merger_list"),
                             image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),
}


def backbone_spec(model_type: str) -> BackboneSpec:
    """Return the spec of a supported backbone.

    Raises:
        ValueError: ``model_type`` is not a supported backbone.
    """
    try:
        return BACKBONES[model_type]
    except KeyError:
        raise ValueError(
            f"unsupported MLLM backbone model_type {model_type!r}; supported: {sorted(BACKBONES)}"
        ) from None
