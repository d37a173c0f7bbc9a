"""``CitrusVConfig``: a multimodal LLM config, a SAM2 config and what joins them.

Two on-disk forms are read:

* ours (written by ``save_pretrained``): ``mllm_config`` (a full Qwen2.5-VL or Qwen3-VL config)
  and ``sam2_config`` (a transformers ``Sam2Config``) as nested dicts;
* the released Citrus-V ``config.json``: Qwen2.5-VL text keys at the top level (or under
  ``text_config``), ``vision_config``, ``seg_token_idx``, mmdet-style ``loss_*_config`` and a
  ``grounding_encoder_config`` whose ``cfg_path`` names the SAM2 yaml (or a ``sam2_model_config``
  dict describing any SAM2, which wins). It is converted to the first form on load.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from transformers import AutoConfig, PreTrainedConfig, Sam2Config
from transformers.configuration_utils import SubConfigSpec

from .backbones import backbone_spec
from .sam2_conversion import sam2_config_from_original, sam2_config_from_variant

logger = logging.getLogger(__name__)

__all__ = ["CitrusVConfig", "RELEASED_IMAGE_MIN_PIXELS", "RELEASED_IMAGE_MAX_PIXELS"]

#: MIN_PIXELS / MAX_PIXELS of the released model's stage-3/4 training runs (reference release §4.6).
RELEASED_IMAGE_MIN_PIXELS = 200704
RELEASED_IMAGE_MAX_PIXELS = 1003520

# Keys of the released config that belong to Citrus-V itself, not to the Qwen2.5-VL config.
_RELEASED_CITRUS_KEYS = (
    "seg_token_idx",
    "loss_mask_config",
    "loss_dice_config",
    "grounding_encoder_config",
    "sam2_model_config",
    "frozen_sam2_decoder",
    "frozen_sam2_image_encoder",
    "frozen_sam2_prompt_encoder",
    "use_seg_loss",
    "use_res_seg_projector",
)
_QWEN_VL_TOP_KEYS = (
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "vision_token_id",
    "tie_word_embeddings",
)


class CitrusVConfig(PreTrainedConfig):
    r"""Configuration of [`CitrusVForConditionalGeneration`].

    Args:
        mllm_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the multimodal LLM backbone: a `Qwen2_5_VLConfig` (default) or `Qwen3VLConfig`.
        sam2_config (`dict` or `Sam2Config`, *optional*):
            Config of transformers' `Sam2Model`, the segmenter with its own image encoder.
        seg_token_id (`int`, *optional*):
            Id of `[SEG]`, looked up from the tokenizer when the checkpoint is built. Required to
            build a model.
        bbox_start_token_id (`int`, *optional*): Id of `<bbox>`.
        bbox_end_token_id (`int`, *optional*): Id of `</bbox>`.
        mask_bce_weight (`float`, defaults to 2.0): Weight of the per-pixel BCE-with-logits mask loss.
        mask_dice_weight (`float`, defaults to 1.0): Weight of the Dice mask loss.
        mask_dice_eps (`float`, defaults to 1.0): Smoothing term of the (naive) Dice loss.
        multimask_output (`bool`, defaults to `True`):
            Decode SAM2's three candidate masks and keep the one with the highest predicted IoU (as
            the release does); `False` uses SAM2's single-mask token.
        image_min_pixels (`int`, *optional*), image_max_pixels (`int`, *optional*):
            Pixel budget of the Qwen smart resize the model was trained with. The processor uses
            them by default and warns when asked for other values.
    """

    model_type = "citrus_v"
    sub_configs_defaults = {
        "mllm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_vl"),
        "sam2_config": Sam2Config,
    }

    mllm_config: dict | PreTrainedConfig | None = None
    sam2_config: dict | PreTrainedConfig | None = None
    seg_token_id: int | None = None
    bbox_start_token_id: int | None = None
    bbox_end_token_id: int | None = None
    mask_bce_weight: float = 2.0
    mask_dice_weight: float = 1.0
    mask_dice_eps: float = 1.0
    multimask_output: bool = True
    image_min_pixels: int | None = None
    image_max_pixels: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.mllm_config is None and _is_released_layout(kwargs):
            kwargs = self._absorb_released_keys(kwargs)
        super().__post_init__(**kwargs)
        backbone_spec(self.mllm_config.model_type)  # raises for unsupported backbones
        for name in ("mask_bce_weight", "mask_dice_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mask_dice_eps <= 0:
            raise ValueError(f"mask_dice_eps must be > 0, got {self.mask_dice_eps}")
        if (
            self.image_min_pixels is not None
            and self.image_max_pixels is not None
            and self.image_min_pixels > self.image_max_pixels
        ):
            raise ValueError(
                f"image_min_pixels={self.image_min_pixels} is larger than image_max_pixels={self.image_max_pixels}"
            )

    # ------------------------------------------------------------------ released layout
    def _absorb_released_keys(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Build ``mllm_config`` / ``sam2_config`` and the Citrus fields from a released config.json."""
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLTextConfig

        kwargs = dict(kwargs)
        citrus = {k: kwargs.pop(k) for k in _RELEASED_CITRUS_KEYS if k in kwargs}
        if citrus.get("use_res_seg_projector"):
            raise ValueError(
                "released config sets use_res_seg_projector=true; the residual projector variant is not implemented "
                "(the released Citrus-V-8B uses the plain 2-layer projector)"
            )

        text_fields = {f.name for f in dataclasses.fields(Qwen2_5_VLTextConfig)} | {"rope_scaling", "rope_theta"}
        text_fields -= {f.name for f in dataclasses.fields(PreTrainedConfig)}
        mllm_kwargs: dict[str, Any] = {k: kwargs.pop(k) for k in list(kwargs) if k in text_fields}
        if "text_config" in kwargs:
            mllm_kwargs["text_config"] = kwargs.pop("text_config")
        if "vision_config" in kwargs:
            mllm_kwargs["vision_config"] = kwargs.pop("vision_config")
        mllm_kwargs.update({k: kwargs.pop(k) for k in _QWEN_VL_TOP_KEYS if k in kwargs})
        dtype = kwargs.get("torch_dtype", kwargs.get("dtype"))
        if dtype is not None:
            mllm_kwargs["torch_dtype"] = dtype
        self.mllm_config = Qwen2_5_VLConfig(**mllm_kwargs)

        if "sam2_model_config" in citrus:
            self.sam2_config = sam2_config_from_original(citrus["sam2_model_config"])
        else:
            cfg_path = (citrus.get("grounding_encoder_config") or {}).get("cfg_path")
            if not cfg_path:
                raise ValueError(
                    "released config describes no SAM2: it has neither `sam2_model_config` nor "
                    "`grounding_encoder_config.cfg_path`"
                )
            self.sam2_config = sam2_config_from_variant(cfg_path)

        if "seg_token_idx" in citrus:
            self.seg_token_id = int(citrus["seg_token_idx"])
        mask_cfg = citrus.get("loss_mask_config") or {}
        dice_cfg = citrus.get("loss_dice_config") or {}
        self.mask_bce_weight = float(mask_cfg.get("loss_weight", self.mask_bce_weight))
        self.mask_dice_weight = float(dice_cfg.get("loss_weight", self.mask_dice_weight))
        self.mask_dice_eps = float(dice_cfg.get("eps", self.mask_dice_eps))
        if dice_cfg and not dice_cfg.get("naive_dice", True):
            raise ValueError("released config sets loss_dice_config.naive_dice=false; only the naive Dice loss is implemented")
        if self.image_min_pixels is None:
            self.image_min_pixels = RELEASED_IMAGE_MIN_PIXELS
        if self.image_max_pixels is None:
            self.image_max_pixels = RELEASED_IMAGE_MAX_PIXELS
        logger.info("read a released-layout Citrus-V config (SAM2 from %s)",
                    "sam2_model_config" if "sam2_model_config" in citrus else citrus["grounding_encoder_config"]["cfg_path"])
        return kwargs

    # ------------------------------------------------------------------ derived values
    @property
    def backbone(self) -> str:
        """``model_type`` of the multimodal LLM (``"qwen2_5_vl"`` or ``"qwen3_vl"``)."""
        return self.mllm_config.model_type

    @property
    def text_hidden_size(self) -> int:
        """Hidden size D of the LLM: input width of the segmentation projector."""
        return int(self.mllm_config.get_text_config().hidden_size)

    @property
    def sam_prompt_dim(self) -> int:
        """Width C of SAM2's prompt tokens: output width of the segmentation projector."""
        return int(self.sam2_config.prompt_encoder_config.hidden_size)

    @property
    def sam_image_size(self) -> int:
        """Side S of the square SAM2 input image."""
        return int(self.sam2_config.prompt_encoder_config.image_size)

    @property
    def sam_lowres_mask_size(self) -> int:
        """Side of SAM2's low-resolution mask logits (S / 4: 256 for a 1024 input)."""
        return self.sam_image_size // 4

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        return self.mllm_config.get_text_config(decoder=decoder, encoder=encoder)


def _is_released_layout(kwargs: dict[str, Any]) -> bool:
    return any(k in kwargs for k in ("grounding_encoder_config", "seg_token_idx", "sam2_model_config")) or (
        "hidden_size" in kwargs and "vision_config" in kwargs
    )
