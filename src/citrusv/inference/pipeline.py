"""``CitrusVPipeline``: images + prompts → text, reasoning, boxes and masks at original resolution.

One generation pass per batch captures the ``[SEG]`` hidden states; SAM2's image encoder runs
once per image that needs masks (never per ``[SEG]``, never for answers without ``[SEG]``); mask
logits are upsampled to the original image size before thresholding; SAM2's object score turns
absent targets into an explicit "not found" result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..processing.boxes import BoxConvention, ParsedBox, convention_for_backbone, parse_boxes
from ..processing.image import ImageSource
from ..processing.masks import mask_bbox_xyxy, resize_mask_logits, rle_encode
from ..processing.processor import CitrusVInputs, CitrusVProcessor, ImageSize
from ..processing.reasoning import parse_reasoning
from .capture import SegStateCapture

logger = logging.getLogger(__name__)

__all__ = ["CitrusVPipeline", "CitrusVResult", "GenerationSettings", "SegmentationResult"]


@dataclass
class SegmentationResult:
    """The mask produced for one ``[SEG]`` token of an answer.

    Attributes:
        index: position of the ``[SEG]`` among the answer's ``[SEG]`` tokens (0-based).
        found: SAM2's object score says the target is present (logit > 0). When not found and
            the pipeline gates by object score (default), ``mask`` is empty.
        mask: ``[H, W]`` bool at the original image size.
        rle: COCO compressed RLE of ``mask`` (``{"size": [H, W], "counts": str}``).
        score: SAM2's predicted IoU of the mask, in [0, 1].
        object_score: sigmoid of SAM2's object-presence logit, in [0, 1].
        area_px: foreground pixels.
        bbox_xyxy_orig_px: tight box of the mask (x2, y2 exclusive), ``None`` when empty.
    """

    index: int
    found: bool
    mask: np.ndarray
    rle: dict[str, Any]
    score: float
    object_score: float
    area_px: int
    bbox_xyxy_orig_px: tuple[int, int, int, int] | None

    def to_dict(self, include_mask: bool = False) -> dict[str, Any]:
        out = {"index": self.index, "found": self.found, "rle": self.rle, "score": self.score,
               "object_score": self.object_score, "area_px": self.area_px,
               "bbox_xyxy_orig_px": list(self.bbox_xyxy_orig_px) if self.bbox_xyxy_orig_px else None}
        if include_mask:
            out["mask"] = self.mask.tolist()
        return out


@dataclass
class CitrusVResult:
    """Everything the model produced for one conversation.

    Attributes:
        text: decoded answer (``[SEG]`` and ``<bbox>`` markers kept, chat control tokens dropped).
        think: the ``<think>`` section, if any.
        answer: the ``<answer>`` section, or the text outside ``<think>``.
        boxes: boxes found in the text, in original-image pixels.
        masks: one entry per generated ``[SEG]``, in order.
        image_size: original and resized size of the first image (``None`` without images).
        num_generated_tokens: tokens generated (up to and including the end token).
        prompt_seg_tokens: ``[SEG]`` tokens already in the prompt (history); they make no masks.
        warnings: parse problems and other notes (never raised as exceptions).
    """

    text: str
    think: str | None
    answer: str
    boxes: list[ParsedBox] = field(default_factory=list)
    masks: list[SegmentationResult] = field(default_factory=list)
    image_size: ImageSize | None = None
    num_generated_tokens: int = 0
    prompt_seg_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, include_masks: bool = False) -> dict[str, Any]:
        """JSON-serialisable view (masks as RLE; raw arrays only when asked)."""
        return {
            "text": self.text, "think": self.think, "answer": self.answer,
            "boxes": [{"xyxy_orig_px": list(b.xyxy_orig_px), "label": b.label, "format": b.source_format} for b in self.boxes],
            "masks": [m.to_dict(include_masks) for m in self.masks],
            "image_size": ({"orig_hw": list(self.image_size.orig_hw), "resized_hw": list(self.image_size.resized_hw)}
                           if self.image_size else None),
            "num_generated_tokens": self.num_generated_tokens, "prompt_seg_tokens": self.prompt_seg_tokens,
            "warnings": list(self.warnings),
        }


@dataclass
class GenerationSettings:
    """Decoding settings (greedy by default).

    Attributes:
        max_new_tokens: generation length limit.
        do_sample: sample instead of greedy decoding.
        temperature, top_p, top_k: sampling parameters (used only when sampling).
        repetition_penalty: 1.0 disables it.
        seed: seeds torch's generator before sampling, for reproducible samples.
    """

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


class CitrusVPipeline:
    """Inference with a Citrus-V model.

    Args:
        model: a ``CitrusVForConditionalGeneration``.
        processor: its ``CitrusVProcessor``.
        mask_threshold: logit threshold applied after upsampling (0 = probability 0.5).
        gate_by_object_score: empty the mask of a ``[SEG]`` whose object score says "absent"
            (its scores are kept). ``False`` returns SAM2's mask regardless, as the release does.
        box_convention: coordinate spaces of box formats (default: the backbone's).
        generation: default ``GenerationSettings``.
    """

    def __init__(
        self,
        model: Any,
        processor: CitrusVProcessor,
        *,
        mask_threshold: float = 0.0,
        gate_by_object_score: bool = True,
        box_convention: BoxConvention | None = None,
        generation: GenerationSettings | None = None,
    ):
        self.model = model.eval()
        self.processor = processor
        self.mask_threshold = mask_threshold
        self.gate_by_object_score = gate_by_object_score
        self.box_convention = box_convention or convention_for_backbone(model.config.backbone)
        self.generation = generation or GenerationSettings()
        if processor.token_ids.seg != model.config.seg_token_id:
            raise ValueError(f"processor's [SEG] id {processor.token_ids.seg} differs from the model's "
                             f"{model.config.seg_token_id}")
        mismatch = processor.resolution_mismatch()
        if mismatch:
            logger.warning(mismatch)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device | None = None, dtype: Any = None,
                        min_pixels: int | None = None, max_pixels: int | None = None, progress: bool = False,
                        **kwargs: Any) -> CitrusVPipeline:
        """Load model and processor from one checkpoint folder (native or released layout).

        ``dtype`` defaults to float32 on CPU and to the checkpoint's dtype elsewhere; ``progress``
        shows a progress bar while weights load; other keyword arguments go to the constructor.
        """
        from ..model import CitrusVForConditionalGeneration

        device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = torch.float32 if device.type == "cpu" else "auto"
        model = CitrusVForConditionalGeneration.from_pretrained(path, dtype=dtype, device=device, progress=progress)
        processor = CitrusVProcessor.from_pretrained(path, config=model.config, min_pixels=min_pixels,
                                                     max_pixels=max_pixels)
        return cls(model, processor, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.mllm.get_input_embeddings().weight.dtype

    # ------------------------------------------------------------------ public API
    def __call__(self, images: ImageSource | Sequence[ImageSource | None] | None, prompts: str | Sequence[str],
                 *, logits_processor: Sequence[Any] | None = None, **generation: Any) -> CitrusVResult | list[CitrusVResult]:
        """One image + one prompt → a result; lists of each → a list of results (one batch).

        ``generation`` overrides fields of ``GenerationSettings`` for this call.
        """
        single = isinstance(prompts, str)
        prompt_list = [prompts] if single else list(prompts)
        if single:
            image_list = [images]
        else:
            image_list = list(images) if isinstance(images, (list, tuple)) else [images] * len(prompt_list)
        if len(image_list) != len(prompt_list):
            raise ValueError(f"{len(prompt_list)} prompts but {len(image_list)} images")
        conversations = [[{"role": "user", "content": p}] for p in prompt_list]
        image_lists = [[] if img is None else [img] for img in image_list]
        results = self.chat(conversations, image_lists, logits_processor=logits_processor, **generation)
        return results[0] if single else results

    def chat(self, conversations: Sequence[Sequence[dict[str, Any]]], images: Sequence[Sequence[ImageSource]] | None = None,
             *, logits_processor: Sequence[Any] | None = None, **generation: Any) -> list[CitrusVResult]:
        """Answer a batch of conversations (messages as for ``CitrusVProcessor``).

        Args:
            logits_processor: extra transformers ``LogitsProcessor`` objects (constrained decoding).
            generation: overrides of ``GenerationSettings`` fields.
        """
        settings = GenerationSettings(**{**vars(self.generation), **generation})
        inputs = self.processor(list(conversations), images if images is not None else None)
        return self.run(inputs, settings, logits_processor=logits_processor)

    # ------------------------------------------------------------------ internals
    @torch.no_grad()
    def run(self, inputs: CitrusVInputs, settings: GenerationSettings | None = None, *,
            logits_processor: Sequence[Any] | None = None) -> list[CitrusVResult]:
        """Generate once for the batch, then decode masks for every generated ``[SEG]``."""
        settings = settings or self.generation
        inputs = inputs.to(self.device, dtype=self.dtype)
        sequences, seg_states = self._generate(inputs, settings, logits_processor)
        prompt_width = inputs.input_ids.shape[1]
        masks = self._masks(inputs, seg_states.generated)
        ids = self.processor.token_ids
        results = []
        for row in range(sequences.shape[0]):
            new_tokens = sequences[row, prompt_width:]
            ends = ((new_tokens == ids.im_end) | (new_tokens == ids.endoftext)).nonzero()
            used = int(ends[0]) + 1 if len(ends) else int((new_tokens != ids.pad).sum())
            text = self.processor.decode(new_tokens[:used]).strip()
            reasoning = parse_reasoning(text)
            warnings = list(reasoning.warnings) + list(inputs.image_notes[row])
            size = inputs.image_sizes[row][0] if inputs.image_sizes[row] else None
            boxes = []
            if size is not None:
                boxes, box_warnings = parse_boxes(text, size, self.box_convention)
                warnings += box_warnings
            elif any(tag in text for tag in ('"bbox_2d"', "<|box_start|>", "<bbox>")):
                warnings.append("the answer contains boxes but the conversation has no image to map them to")
            row_masks = masks.get(row, [])
            if seg_states.generated[row].shape[0] and size is None:
                warnings.append(f"{seg_states.generated[row].shape[0]} [SEG] token(s) generated but the conversation "
                                "has no image: no masks")
            if seg_states.prompt_counts[row]:
                warnings.append(f"{seg_states.prompt_counts[row]} [SEG] token(s) in the prompt history produce no mask")
            if used == len(new_tokens) and not len(ends):
                warnings.append(f"generation stopped at max_new_tokens={settings.max_new_tokens}")
            results.append(CitrusVResult(
                text=text, think=reasoning.think, answer=reasoning.answer, boxes=boxes, masks=row_masks,
                image_size=size, num_generated_tokens=used, prompt_seg_tokens=seg_states.prompt_counts[row],
                warnings=warnings))
        return results

    def _generate(self, inputs: CitrusVInputs, settings: GenerationSettings, logits_processor: Sequence[Any] | None):
        from transformers import GenerationConfig, LogitsProcessorList

        ids = self.processor.token_ids
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
            eos_token_id=[ids.im_end, ids.endoftext], pad_token_id=ids.pad,
            repetition_penalty=settings.repetition_penalty,
            **({"temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k}
               if settings.do_sample else {}),
        )
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        backbone = self.model.mllm
        with SegStateCapture(backbone, self.model.config.seg_token_id) as capture:
            sequences = backbone.generate(**inputs.model_inputs(), generation_config=config,
                                          logits_processor=LogitsProcessorList(logits_processor or []))
            states = capture.finish(sequences, prompt_width=inputs.input_ids.shape[1])
        return sequences, states

    def _masks(self, inputs: CitrusVInputs, generated: list[torch.Tensor]) -> dict[int, list[SegmentationResult]]:
        """Project ``[SEG]`` states, encode each needed SAM image once, decode all masks."""
        rows = [r for r, states in enumerate(generated) if states.shape[0] and inputs.sam_image_index[r] >= 0]
        if not rows:
            return {}
        model = self.model
        sam_rows = [inputs.sam_image_index[r] for r in rows]
        features = model.encode_sam_images(inputs.sam_pixel_values[sam_rows])  # one call, one pass per image
        prompts = model.project_seg_hidden_states(torch.cat([generated[r] for r in rows]))
        owner = torch.cat([torch.full((generated[r].shape[0],), i, dtype=torch.long) for i, r in enumerate(rows)])
        logits, iou, obj = model.decode_masks(features, prompts, owner.to(prompts.device))
        out: dict[int, list[SegmentationResult]] = {}
        start = 0
        for r in rows:
            count = generated[r].shape[0]
            size = inputs.image_sizes[r][0]
            full = resize_mask_logits(logits[start:start + count], size.orig_hw).cpu()
            results = []
            for k in range(count):
                found = bool(obj[start + k] > 0)
                mask = (full[k] > self.mask_threshold).numpy()
                if self.gate_by_object_score and not found:
                    mask = np.zeros_like(mask)
                results.append(SegmentationResult(
                    index=k, found=found, mask=mask, rle=rle_encode(mask), score=float(iou[start + k]),
                    object_score=float(torch.sigmoid(obj[start + k])), area_px=int(mask.sum()),
                    bbox_xyxy_orig_px=mask_bbox_xyxy(mask)))
            out[r] = results
            start += count
        return out
