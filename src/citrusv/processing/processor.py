"""``CitrusVProcessor``: conversations + images → model inputs for both image encoders.

A conversation is a list of messages ``{"role", "content"}`` where ``content`` is a string with
``<image>`` placeholders (ms-swift style) or a list of ``{"type": "text" | "image", ...}`` parts
(transformers style). The rendering is Qwen's ChatML (default system prompt
"You are a helpful assistant."), each ``<image>`` becomes ``<|vision_start|>`` +
``t·h·w / merge²`` × ``<|image_pad|>`` + ``<|vision_end|>``, and ``mm_token_type_ids`` marks the
image tokens (transformers v5 needs it for multimodal RoPE). The first image of each
conversation also becomes the SAM2 input.

transformers' own ``Qwen2_5_VLProcessor`` cannot be built without torchvision, hence this class.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .image import ImageSource, LoadedImage, load_image, qwen_pixel_values, sam_pixel_values
from .tokens import (
    CHAT_CONTROL_TOKENS,
    IM_END,
    IM_START,
    IMAGE_PAD,
    SEG,
    VISION_END,
    VISION_START,
    add_citrus_tokens,
    citrus_token_ids,
)

logger = logging.getLogger(__name__)

__all__ = ["CitrusVInputs", "CitrusVProcessor", "EncodedConversation", "ImageProcessingConfig", "ImageSize"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
IMAGE_PLACEHOLDER = "<image>"
PROCESSOR_FILE = "citrusv_processor.json"
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ImageSize:
    """Sizes of one image in the two pixel spaces boxes can be written in.

    Attributes:
        orig_hw: (height, width) of the image as loaded (the public coordinate space).
        resized_hw: (height, width) after Qwen's smart resize (what the LLM saw).
    """

    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]


@dataclass
class ImageProcessingConfig:
    """Image settings of a processor.

    Attributes:
        min_pixels, max_pixels: pixel budget of Qwen's smart resize.
        patch_size, merge_size, temporal_patch_size: the ViT's patching (from the model config).
        image_mean, image_std: ViT input normalisation.
        sam_image_size: side S of the square SAM2 input.
    """

    min_pixels: int
    max_pixels: int
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    sam_image_size: int

    def __post_init__(self) -> None:
        if self.min_pixels <= 0 or self.max_pixels < self.min_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}")

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def qwen_preprocessor_json(self) -> dict[str, Any]:
        """The Qwen ``preprocessor_config.json`` (readable by transformers, vLLM, ms-swift)."""
        return {
            "image_processor_type": "Qwen2VLImageProcessor",
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": self.temporal_patch_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_resize": True,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "do_convert_rgb": True,
            "resample": 3,
        }

    def save(self, folder: str | Path) -> None:
        """Write ``preprocessor_config.json`` (Qwen format) into ``folder``."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "preprocessor_config.json").write_text(json.dumps(self.qwen_preprocessor_json(), indent=2))


@dataclass
class EncodedConversation:
    """One conversation after tokenisation and image processing (unpadded).

    Attributes:
        input_ids: token ids ``[T]``.
        mm_token_type_ids: 1 at image tokens, else 0, ``[T]``.
        labels: next-token targets (assistant tokens and their ``<|im_end|>``; -100 elsewhere), or
            ``None`` when not asked for.
        pixel_values: ``[P, 3·t·p·p]`` patches of all images, or ``None`` without images.
        image_grid_thw: one (t, h, w) per image.
        sam_pixel_values: ``[3, S, S]`` SAM2 input from the first image, or ``None``.
        image_sizes: original and resized size per image.
        image_notes: conversions applied to the images (16-bit rescale, alpha, ...).
    """

    input_ids: list[int]
    mm_token_type_ids: list[int]
    labels: list[int] | None = None
    pixel_values: np.ndarray | None = None
    image_grid_thw: list[tuple[int, int, int]] = field(default_factory=list)
    sam_pixel_values: np.ndarray | None = None
    image_sizes: list[ImageSize] = field(default_factory=list)
    image_notes: list[str] = field(default_factory=list)


@dataclass
class CitrusVInputs:
    """A padded batch of conversations.

    Attributes:
        input_ids, attention_mask, mm_token_type_ids: ``[B, T]``.
        pixel_values: ``[ΣP, 3·t·p·p]`` float32 or ``None``; image_grid_thw: ``[n_images, 3]``.
        sam_pixel_values: ``[K, 3, S, S]`` for the K rows that have an image, or ``None``.
        sam_image_index: per row, the index of its SAM image in ``sam_pixel_values`` or -1.
        labels: ``[B, T]`` or ``None``.
        image_sizes: per row, the sizes of its images.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    sam_pixel_values: torch.Tensor | None
    sam_image_index: list[int]
    labels: torch.Tensor | None = None
    image_sizes: list[list[ImageSize]] = field(default_factory=list)
    image_notes: list[list[str]] = field(default_factory=list)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for the backbone's ``forward`` / ``generate``."""
        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                  "mm_token_type_ids": self.mm_token_type_ids}
        if self.pixel_values is not None:
            inputs["pixel_values"] = self.pixel_values
            inputs["image_grid_thw"] = self.image_grid_thw
        return inputs

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> CitrusVInputs:
        """Move tensors; floating image tensors also take ``dtype`` when given."""
        def move(t: torch.Tensor | None, floating: bool = False) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype) if floating and dtype is not None else t.to(device)

        return CitrusVInputs(
            input_ids=move(self.input_ids), attention_mask=move(self.attention_mask),
            mm_token_type_ids=move(self.mm_token_type_ids), pixel_values=move(self.pixel_values, True),
            image_grid_thw=move(self.image_grid_thw), sam_pixel_values=move(self.sam_pixel_values, True),
            sam_image_index=list(self.sam_image_index), labels=move(self.labels), image_sizes=self.image_sizes,
            image_notes=self.image_notes,
        )


def _content_to_text(content: Any, index: int) -> tuple[str, list[Any]]:
    """A message content → (text with ``<image>`` placeholders, images embedded in the parts)."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise ValueError(f"message {index}: content must be a string or a list of parts, got {type(content).__name__}")
    text, images = "", []
    for part in content:
        if not isinstance(part, dict) or "type" not in part:
            raise ValueError(f"message {index}: each content part must be a dict with a 'type'")
        kind = part["type"]
        if kind == "text":
            text += str(part.get("text", ""))
        elif kind in ("image", "image_url"):
            text += IMAGE_PLACEHOLDER
            value = part.get("image", part.get("image_url"))
            if isinstance(value, dict):
                value = value.get("url")
            if value is not None:
                images.append(value)
        else:
            raise ValueError(f"message {index}: unsupported content part type {kind!r}")
    return text, images


class CitrusVProcessor:
    """Tokenizer + image processing for Citrus-V (Qwen2.5-VL / Qwen3-VL backbones).

    Args:
        tokenizer: a Qwen tokenizer; ``[SEG]``, ``<bbox>``, ``</bbox>`` are added if absent.
        image_config: image settings.
        trained_min_pixels, trained_max_pixels: the model's training resolution, if known; a
            processor using other values says so in ``resolution_mismatch()``.
        default_system_prompt: system turn inserted when a conversation has none.
        max_input_pixels: decompression-bomb limit for input images.
    """

    def __init__(
        self,
        tokenizer: Any,
        image_config: ImageProcessingConfig,
        *,
        trained_min_pixels: int | None = None,
        trained_max_pixels: int | None = None,
        default_system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_input_pixels: int | None = None,
    ):
        add_citrus_tokens(tokenizer)
        self.tokenizer = tokenizer
        self.token_ids = citrus_token_ids(tokenizer)
        self.image_config = image_config
        self.trained_min_pixels = trained_min_pixels
        self.trained_max_pixels = trained_max_pixels
        self.default_system_prompt = default_system_prompt
        self.max_input_pixels = max_input_pixels

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_model_config(cls, config: Any, tokenizer: Any, *, min_pixels: int | None = None,
                         max_pixels: int | None = None, **kwargs: Any) -> CitrusVProcessor:
        """Build the processor that matches a ``CitrusVConfig`` (patching, SAM size, resolution).

        Raises:
            ValueError: the tokenizer's Citrus token ids differ from the config's.
        """
        from ..model.backbones import backbone_spec

        add_citrus_tokens(tokenizer)
        ids = citrus_token_ids(tokenizer)
        expected = {"[SEG]": (config.seg_token_id, ids.seg), "<bbox>": (config.bbox_start_token_id, ids.bbox_start),
                    "</bbox>": (config.bbox_end_token_id, ids.bbox_end)}
        for token, (want, got) in expected.items():
            if want is not None and want != got:
                raise ValueError(f"tokenizer gives {token} id {got} but the model config says {want}; "
                                 "the tokenizer does not belong to this checkpoint")
        mllm = config.mllm_config
        if mllm.image_token_id != ids.image_pad:
            raise ValueError(f"tokenizer gives <|image_pad|> id {ids.image_pad} but the model config says {mllm.image_token_id}")
        spec = backbone_spec(mllm.model_type)
        vision = mllm.vision_config
        trained_min, trained_max = config.image_min_pixels, config.image_max_pixels
        image_config = ImageProcessingConfig(
            min_pixels=min_pixels or trained_min or 56 * 56,
            max_pixels=max_pixels or trained_max or 28 * 28 * 1280,
            patch_size=int(vision.patch_size),
            merge_size=int(vision.spatial_merge_size),
            temporal_patch_size=int(vision.temporal_patch_size),
            image_mean=spec.image_mean,
            image_std=spec.image_std,
            sam_image_size=config.sam_image_size,
        )
        processor = cls(tokenizer, image_config, trained_min_pixels=trained_min, trained_max_pixels=trained_max, **kwargs)
        mismatch = processor.resolution_mismatch()
        if mismatch:
            logger.warning(mismatch)
        return processor

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, min_pixels: int | None = None, max_pixels: int | None = None,
                        config: Any = None, **kwargs: Any) -> CitrusVProcessor:
        """Load tokenizer and settings from a checkpoint folder (native or released layout).

        The resolution comes from ``citrusv_processor.json`` when present, else from the model
        config's training values; ``min_pixels`` / ``max_pixels`` override both (with a warning
        when they differ from the training values).
        """
        from transformers import AutoTokenizer

        from ..model.checkpoint import resolve_model_dir
        from ..model.configuration_citrus_v import CitrusVConfig

        folder = resolve_model_dir(folder)
        config = config if config is not None else CitrusVConfig.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        stored: dict[str, Any] = {}
        if (folder / PROCESSOR_FILE).is_file():
            stored = json.loads((folder / PROCESSOR_FILE).read_text())
        if "default_system_prompt" in stored:
            kwargs.setdefault("default_system_prompt", stored["default_system_prompt"])
        return cls.for_model_config(config, tokenizer, min_pixels=min_pixels or stored.get("min_pixels"),
                                    max_pixels=max_pixels or stored.get("max_pixels"), **kwargs)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the tokenizer, a Qwen ``preprocessor_config.json`` and ``citrusv_processor.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.image_config.save(folder)
        settings = {"processor_class": type(self).__name__, "min_pixels": self.image_config.min_pixels,
                    "max_pixels": self.image_config.max_pixels, "sam_image_size": self.image_config.sam_image_size,
                    "default_system_prompt": self.default_system_prompt}
        (folder / PROCESSOR_FILE).write_text(json.dumps(settings, indent=2))

    def image_config_for_release(self) -> ImageProcessingConfig:
        """The Qwen image settings a released checkpoint folder ships (Qwen's defaults)."""
        return ImageProcessingConfig(**{**asdict(self.image_config), "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280})

    def resolution_mismatch(self) -> str | None:
        """A message when the processor's pixel budget differs from the training one, else ``None``."""
        diffs = []
        for name, used, trained in (("min_pixels", self.image_config.min_pixels, self.trained_min_pixels),
                                    ("max_pixels", self.image_config.max_pixels, self.trained_max_pixels)):
            if trained is not None and used != trained:
                diffs.append(f"{name}={used} (trained with {trained})")
        if not diffs:
            return None
        return ("image resolution differs from the model's training resolution: " + ", ".join(diffs)
                + "; results may degrade")

    # ------------------------------------------------------------------ text
    def _check_text(self, role: str, text: str, index: int) -> None:
        reserved = CHAT_CONTROL_TOKENS if role == "assistant" else CHAT_CONTROL_TOKENS + (SEG,)
        found = [tok for tok in reserved if tok in text]
        if found:
            raise ValueError(
                f"message {index} ({role}) contains the reserved token(s) {found}; they are control tokens of the "
                "model and cannot appear in message text"
            )

    def normalize_messages(self, messages: Sequence[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[Any]]:
        """Validate messages → ``[(role, text with <image>)]`` and images embedded in content parts.

        Raises:
            ValueError: malformed message, unknown role, or reserved tokens in the text.
        """
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ValueError("a conversation must be a non-empty list of messages")
        turns, embedded = [], []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ValueError(f"message {index} must be a dict with 'role' and 'content'")
            role = message["role"]
            if role not in ROLES:
                raise ValueError(f"message {index}: unknown role {role!r} (expected one of {ROLES})")
            text, images = _content_to_text(message["content"], index)
            self._check_text(role, text, index)
            turns.append((role, text))
            embedded.extend(images)
        return turns, embedded

    def render(self, turns: Sequence[tuple[str, str]], image_token_counts: Sequence[int],
               add_generation_prompt: bool) -> tuple[str, list[tuple[int, int]]]:
        """ChatML text with image slots expanded; also the character spans to supervise
        (each assistant message and its ``<|im_end|>``)."""
        counts = iter(image_token_counts)
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        length = 0

        def emit(piece: str) -> None:
            nonlocal length
            parts.append(piece)
            length += len(piece)

        if turns[0][0] != "system":
            emit(f"{IM_START}system\n{self.default_system_prompt}{IM_END}\n")
        for role, text in turns:
            emit(f"{IM_START}{role}\n")
            pieces = text.split(IMAGE_PLACEHOLDER)
            start = length
            for k, piece in enumerate(pieces):
                if k:
                    emit(VISION_START + IMAGE_PAD * next(counts) + VISION_END)
                emit(piece)
            emit(IM_END)
            if role == "assistant":
                spans.append((start, length))
            emit("\n")
        if add_generation_prompt:
            emit(f"{IM_START}assistant\n")
        return "".join(parts), spans

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def _attach_images(turns: list[tuple[str, str]], num_images: int) -> list[tuple[str, str]]:
        """Check placeholders against images; prepend missing ones to the first user message."""
        placeholders = sum(text.count(IMAGE_PLACEHOLDER) for _, text in turns)
        if placeholders > num_images:
            raise ValueError(f"the conversation has {placeholders} <image> placeholders but {num_images} images")
        if placeholders < num_images:
            users = [i for i, (role, _) in enumerate(turns) if role == "user"]
            if not users:
                raise ValueError("images were given but the conversation has no user message to attach them to")
            turns = list(turns)
            role, text = turns[users[0]]
            turns[users[0]] = (role, IMAGE_PLACEHOLDER * (num_images - placeholders) + text)
        return turns

    def image_token_count(self, height: int, width: int) -> int:
        """LLM tokens one ``height × width`` image becomes after the smart resize."""
        from .image import smart_resize

        cfg = self.image_config
        resized_h, resized_w = smart_resize(height, width, cfg.factor, cfg.min_pixels, cfg.max_pixels)
        return (resized_h // cfg.patch_size) * (resized_w // cfg.patch_size) // cfg.merge_size**2

    def sequence_length(self, messages: Sequence[dict[str, Any]], image_sizes_hw: Sequence[tuple[int, int]],
                        add_generation_prompt: bool = False) -> int:
        """Token count of a conversation whose images have the given (height, width), computed
        without decoding any pixel (what ``encode`` would produce)."""
        turns, _ = self.normalize_messages(messages)
        turns = self._attach_images(turns, len(image_sizes_hw))
        counts = [self.image_token_count(h, w) for h, w in image_sizes_hw]
        text, _ = self.render(turns, counts, add_generation_prompt)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def load_images(self, images: Sequence[ImageSource]) -> list[LoadedImage]:
        kwargs = {"max_input_pixels": self.max_input_pixels} if self.max_input_pixels else {}
        return [image if isinstance(image, LoadedImage) else load_image(image, **kwargs) for image in images]

    def encode(
        self,
        messages: Sequence[dict[str, Any]],
        images: Sequence[ImageSource] | None = None,
        *,
        add_generation_prompt: bool = True,
        return_labels: bool = False,
    ) -> EncodedConversation:
        """Encode one conversation.

        Missing ``<image>`` placeholders are prepended to the first user message (as ms-swift does).

        Raises:
            ValueError: more placeholders than images, invalid messages, reserved tokens in text.
            ImageLoadError: an image cannot be read (the message says why).
        """
        turns, embedded = self.normalize_messages(messages)
        sources = list(images) if images is not None else embedded
        if images is not None and embedded:
            raise ValueError("pass images either inside the content parts or as `images`, not both")
        turns = self._attach_images(turns, len(sources))

        loaded = self.load_images(sources)
        cfg = self.image_config
        patches, grids, sizes, token_counts, notes = [], [], [], [], []
        sam_input = None
        for k, image in enumerate(loaded):
            values, grid, resized = qwen_pixel_values(
                image.image, patch_size=cfg.patch_size, merge_size=cfg.merge_size,
                temporal_patch_size=cfg.temporal_patch_size, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels,
                mean=cfg.image_mean, std=cfg.image_std)
            patches.append(values)
            grids.append(grid)
            token_counts.append(grid[0] * grid[1] * grid[2] // cfg.merge_size**2)
            sizes.append(ImageSize(orig_hw=image.size_hw, resized_hw=(resized.height, resized.width)))
            notes.extend(image.notes)
            if k == 0:  # the release feeds SAM2 the first image, after the Qwen resize
                sam_input = sam_pixel_values(resized, cfg.sam_image_size)

        text, spans = self.render(turns, token_counts, add_generation_prompt)
        encoding = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=return_labels)
        input_ids = list(encoding["input_ids"])
        image_pad = self.token_ids.image_pad
        mm_types = [1 if t == image_pad else 0 for t in input_ids]
        if sum(mm_types) != sum(token_counts):  # pragma: no cover - would be a tokenizer bug
            raise AssertionError(f"{sum(mm_types)} image tokens after tokenisation, expected {sum(token_counts)}")
        labels = None
        if return_labels:
            labels = [-100] * len(input_ids)
            for i, (start, _end) in enumerate(encoding["offset_mapping"]):
                if any(lo <= start < hi for lo, hi in spans):
                    labels[i] = input_ids[i]
        return EncodedConversation(
            input_ids=input_ids, mm_token_type_ids=mm_types, labels=labels,
            pixel_values=np.concatenate(patches) if patches else None, image_grid_thw=grids,
            sam_pixel_values=sam_input, image_sizes=sizes, image_notes=notes,
        )

    def collate(self, encoded: Sequence[EncodedConversation], padding_side: str = "left") -> CitrusVInputs:
        """Pad a list of encoded conversations into one batch (left padding for generation)."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if not encoded:
            raise ValueError("cannot collate an empty batch")
        width = max(len(e.input_ids) for e in encoded)
        pad = self.token_ids.pad

        def padded(values: list[int], fill: int) -> list[int]:
            gap = [fill] * (width - len(values))
            return gap + values if padding_side == "left" else values + gap

        input_ids = torch.tensor([padded(e.input_ids, pad) for e in encoded], dtype=torch.long)
        attention = torch.tensor([padded([1] * len(e.input_ids), 0) for e in encoded], dtype=torch.long)
        mm_types = torch.tensor([padded(e.mm_token_type_ids, 0) for e in encoded], dtype=torch.int32)
        labels = None
        if all(e.labels is not None for e in encoded):
            labels = torch.tensor([padded(e.labels, -100) for e in encoded], dtype=torch.long)
        with_pixels = [e for e in encoded if e.pixel_values is not None]
        pixel_values = torch.from_numpy(np.concatenate([e.pixel_values for e in with_pixels])) if with_pixels else None
        grids = [g for e in encoded for g in e.image_grid_thw]
        grid_thw = torch.tensor(grids, dtype=torch.long) if grids else None
        sam_index, sam_images = [], []
        for e in encoded:
            if e.sam_pixel_values is None:
                sam_index.append(-1)
            else:
                sam_index.append(len(sam_images))
                sam_images.append(e.sam_pixel_values)
        sam = torch.from_numpy(np.stack(sam_images)) if sam_images else None
        return CitrusVInputs(
            input_ids=input_ids, attention_mask=attention, mm_token_type_ids=mm_types, pixel_values=pixel_values,
            image_grid_thw=grid_thw, sam_pixel_values=sam, sam_image_index=sam_index, labels=labels,
            image_sizes=[list(e.image_sizes) for e in encoded], image_notes=[list(e.image_notes) for e in encoded],
        )

    def __call__(
        self,
        conversations: Sequence[dict[str, Any]] | Sequence[Sequence[dict[str, Any]]],
        images: Sequence[ImageSource] | Sequence[Sequence[ImageSource]] | None = None,
        *,
        add_generation_prompt: bool = True,
        return_labels: bool = False,
        padding_side: str = "left",
    ) -> CitrusVInputs:
        """Encode one conversation or a batch of them.

        Args:
            conversations: a list of messages, or a list of such lists.
            images: images of one conversation, or one list per conversation.
        """
        single = bool(conversations) and isinstance(conversations[0], dict)
        batch = [conversations] if single else list(conversations)
        if images is None:
            per_row: list[Sequence[ImageSource] | None] = [None] * len(batch)
        elif single:
            per_row = [images]
        else:
            if len(images) != len(batch):
                raise ValueError(f"{len(batch)} conversations but {len(images)} image lists")
            per_row = list(images)
        encoded = [self.encode(c, imgs, add_generation_prompt=add_generation_prompt, return_labels=return_labels)
                   for c, imgs in zip(batch, per_row)]
        return self.collate(encoded, padding_side=padding_side)

    def decode(self, token_ids: Sequence[int] | torch.Tensor) -> str:
        """Decode generated ids, keeping ``[SEG]`` / ``<bbox>`` markers but dropping chat control
        tokens (end of turn, padding)."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        drop = {self.token_ids.im_end, self.token_ids.endoftext, self.token_ids.pad, self.token_ids.im_start}
        return self.tokenizer.decode([t for t in ids if t not in drop], skip_special_tokens=False)
