"""Citrus-V: a Qwen2.5-VL / Qwen3-VL multimodal LLM whose ``[SEG]`` tokens prompt SAM2.

Reading order: outputs, ``SegProjector``, ``CitrusVPreTrainedModel``,
``CitrusVForConditionalGeneration``. Shapes use B (batch rows), T (tokens), D (LLM hidden size),
M (``[SEG]`` tokens / masks in a batch, flattened row-major), K (SAM images in a batch),
C (SAM2 prompt width), S (SAM2 input side), h, w (low-resolution mask side, S / 4).

Two image encoders run side by side ("dual encoders"): the backbone's ViT reads the
smart-resized image for the LLM, SAM2's Hiera reads a square S×S copy for masks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, Sam2Model
from transformers.utils import ModelOutput

from .backbones import backbone_spec
from .configuration_citrus_v import CitrusVConfig
from .losses import mask_bce_loss, mask_dice_loss

logger = logging.getLogger(__name__)

__all__ = [
    "CitrusVForConditionalGeneration",
    "CitrusVOutput",
    "CitrusVPreTrainedModel",
    "CitrusVSegmentationOutput",
    "SegProjector",
]


# ------------------------------------------------------------------------------------ outputs
@dataclass
class CitrusVSegmentationOutput(ModelOutput):
    """Output of ``CitrusVForConditionalGeneration.segment``.

    Attributes:
        mask_logits_lowres: ``[B, N, h, w]`` float32 SAM2 low-resolution mask logits (the candidate
            with the best predicted IoU when ``config.multimask_output``), for the square S×S image.
        iou_scores: ``[B, N]`` predicted IoU of the returned masks, in [0, 1].
        object_score_logits: ``[B, N]`` SAM2 object-presence logits (> 0: the object is present).
    """

    mask_logits_lowres: torch.Tensor | None = None
    iou_scores: torch.Tensor | None = None
    object_score_logits: torch.Tensor | None = None


@dataclass
class CitrusVOutput(ModelOutput):
    """Output of ``CitrusVForConditionalGeneration.forward``.

    Attributes:
        loss: ``lm_loss + mask_bce_weight · mask_bce_loss + mask_dice_weight · mask_dice_loss``
            (terms that were not computed count as 0); ``None`` when nothing was supervised.
        lm_loss: next-token cross-entropy over label tokens.
        mask_bce_loss: per-pixel BCE over all masks, unweighted.
        mask_dice_loss: naive Dice loss averaged over masks, unweighted.
        logits: ``[B, T, V]`` LM logits (``[B, logits_to_keep, V]`` when asked).
        seg_embeds: ``[M, C]`` projected ``[SEG]`` hidden states, row-major order.
        mask_logits_lowres: ``[M, h, w]`` float32 predicted mask logits (when SAM images were given).
        iou_scores: ``[M]`` predicted IoU.
        object_score_logits: ``[M]`` object-presence logits.
        num_masks: M.
    """

    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    mask_bce_loss: torch.Tensor | None = None
    mask_dice_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    seg_embeds: torch.Tensor | None = None
    mask_logits_lowres: torch.Tensor | None = None
    iou_scores: torch.Tensor | None = None
    object_score_logits: torch.Tensor | None = None
    num_masks: int | None = None


# ------------------------------------------------------------------------------------- blocks
class SegProjector(nn.Sequential):
    """``[SEG]`` last hidden state ``[M, D]`` → SAM2 sparse prompt token ``[M, C]``.

    ``Linear(D→D) → ReLU → Linear(D→C)``; the linear layers sit at indices 0 and 2 so the weight
    names (``seg_projector.0.*``, ``seg_projector.2.*``) match the released checkpoint.
    """

    def __init__(self, hidden_size: int, prompt_dim: int):
        super().__init__(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, prompt_dim))


# ------------------------------------------------------------------------------- base class
class CitrusVPreTrainedModel(PreTrainedModel):
    config_class = CitrusVConfig
    config: CitrusVConfig
    base_model_prefix = "citrus_v"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock", "Qwen3VLTextDecoderLayer",
                         "Qwen3VLVisionBlock", "Sam2MultiScaleBlock", "SegProjector"]

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone and SAM2 initialise themselves; only the projector is ours. The release
        # initialises it N(0, 0.02) with zero bias, like the rest of a Qwen model.
        if isinstance(module, SegProjector):
            for layer in (module[0], module[2]):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        else:
            super()._init_weights(module)


# ------------------------------------------------------------------------------------ model
class CitrusVForConditionalGeneration(CitrusVPreTrainedModel):
    """The unified model: ``self.mllm`` (transformers Qwen2.5-VL / Qwen3-VL), ``self.sam2``
    (transformers ``Sam2Model``) and ``self.seg_projector`` between them.

    Weight names follow the modules: ``mllm.model.language_model.*``, ``mllm.model.visual.*``,
    ``mllm.lm_head.*``, ``sam2.*`` (transformers SAM2 names), ``seg_projector.{0,2}.*``.
    ``from_pretrained`` also reads the released Citrus-V layout (see ``citrusv.model.checkpoint``).
    """

    def __init__(self, config: CitrusVConfig):
        super().__init__(config)
        if config.seg_token_id is None:
            raise ValueError(
                "config.seg_token_id is not set: look it up from the tokenizer (see "
                "citrusv.processing.tokens.citrus_token_ids) before building the model"
            )
        self.backbone = backbone_spec(config.backbone)
        self.mllm = self.backbone.model_class()(config.mllm_config)
        self.sam2 = Sam2Model(config.sam2_config)
        self.seg_projector = SegProjector(config.text_hidden_size, config.sam_prompt_dim)
        self.post_init()

    # ------------------------------------------------------------------ HF plumbing
    def get_input_embeddings(self) -> nn.Module:
        return self.mllm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.mllm.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.mllm.get_output_embeddings()

    @property
    def seg_token_id(self) -> int:
        return int(self.config.seg_token_id)

    # ------------------------------------------------------------------ SAM2 path
    def encode_sam_images(self, sam_pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Run SAM2's image encoder once per image.

        Args:
            sam_pixel_values: ``[K, 3, S, S]`` ImageNet-normalised images.

        Returns:
            Three feature levels ``[K, C/8, 4s, 4s]``, ``[K, C/4, 2s, 2s]`` (already projected by the
            decoder's ``conv_s0`` / ``conv_s1``) and ``[K, C, s, s]`` with SAM2's no-memory embedding
            added (s = S / 16), as the image-only path of the original SAM2 prepares them.

        Raises:
            ValueError: the input is not ``[K, 3, S, S]`` with S = ``config.sam_image_size``.
        """
        size = self.config.sam_image_size
        if sam_pixel_values.dim() != 4 or tuple(sam_pixel_values.shape[1:]) != (3, size, size):
            raise ValueError(
                f"sam_pixel_values must have shape [K, 3, {size}, {size}], got {tuple(sam_pixel_values.shape)}"
            )
        dtype = self.sam2.vision_encoder.backbone.patch_embed.projection.weight.dtype
        vision = self.sam2.get_image_features(sam_pixel_values.to(dtype), return_dict=True)
        feature_maps = list(vision.fpn_hidden_states)  # each [H_l·W_l, K, C_l]
        feature_maps[-1] = feature_maps[-1] + self.sam2.no_memory_embedding
        batch = sam_pixel_values.shape[0]
        return [
            feat.permute(1, 2, 0).reshape(batch, -1, *hw)
            for feat, hw in zip(feature_maps, self.sam2.backbone_feature_sizes)
        ]

    def decode_masks(
        self,
        image_features: list[torch.Tensor],
        prompt_embeds: torch.Tensor,
        image_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode one mask per prompt token against the image it belongs to.

        The sparse prompt is the release's: SAM2's empty-point token, its padding token, then the
        projected ``[SEG]`` embedding; the dense prompt is the learned no-mask embedding.

        Args:
            image_features: output of ``encode_sam_images`` for K images.
            prompt_embeds: ``[M, C]`` projected ``[SEG]`` embeddings.
            image_index: ``[M]`` index in ``[0, K)`` of the image each prompt refers to.

        Returns:
            ``mask_logits_lowres [M, h, w]`` (float32), ``iou_scores [M]``, ``object_score_logits [M]``.
        """
        num = prompt_embeds.shape[0]
        if prompt_embeds.dim() != 2 or prompt_embeds.shape[1] != self.config.sam_prompt_dim:
            raise ValueError(
                f"prompt_embeds must have shape [M, {self.config.sam_prompt_dim}], got {tuple(prompt_embeds.shape)}"
            )
        if image_index.shape != (num,):
            raise ValueError(f"image_index must have shape [{num}], got {tuple(image_index.shape)}")
        num_images = image_features[-1].shape[0]
        if num and (int(image_index.min()) < 0 or int(image_index.max()) >= num_images):
            raise ValueError(f"image_index values must lie in [0, {num_images}), got {image_index.tolist()}")
        lowres = self.config.sam_lowres_mask_size
        device = image_features[-1].device
        if num == 0:
            empty = torch.zeros(0, device=device)
            return torch.zeros(0, lowres, lowres, device=device), empty, empty

        image_index = image_index.to(device)
        feats = [level.index_select(0, image_index) for level in image_features]  # per prompt
        dtype = feats[-1].dtype
        # Empty point (0, 0) with label -1; the prompt encoder pads it with a not-a-point token.
        points = torch.zeros(num, 1, 1, 2, device=device, dtype=dtype)
        labels = -torch.ones(num, 1, 1, device=device, dtype=torch.int32)
        sparse, dense = self.sam2.prompt_encoder(input_points=points, input_labels=labels, input_boxes=None, input_masks=None)
        sparse = torch.cat([sparse, prompt_embeds.to(sparse.dtype)[:, None, None, :]], dim=2)  # [M, 1, 3, C]
        positional = self.sam2.get_image_wide_positional_embeddings().repeat(num, 1, 1, 1)
        masks, iou, _, object_logits = self.sam2.mask_decoder(
            image_embeddings=feats[-1],
            image_positional_embeddings=positional,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.config.multimask_output,
            high_resolution_features=feats[:-1],
        )
        masks, iou = masks[:, 0], iou[:, 0]  # [M, n_cand, h, w], [M, n_cand]
        best = iou.argmax(dim=-1)
        rows = torch.arange(num, device=device)
        return masks[rows, best].float(), iou[rows, best].float(), object_logits[:, 0, 0].float()

    def project_seg_hidden_states(self, seg_hidden_states: torch.Tensor) -> torch.Tensor:
        """``[M, D]`` last-layer (final-norm) hidden states at ``[SEG]`` input positions → ``[M, C]``."""
        return self.seg_projector(seg_hidden_states.to(self.seg_projector[0].weight.dtype))

    def segment(self, sam_pixel_values: torch.Tensor, prompt_embeds: torch.Tensor) -> CitrusVSegmentationOutput:
        """Run SAM2 on images with projected prompt embeddings; each image is encoded once.

        Args:
            sam_pixel_values: ``[B, 3, S, S]`` ImageNet-normalised images.
            prompt_embeds: ``[B, N, C]`` projected ``[SEG]`` embeddings, N prompts per image.

        Returns:
            ``CitrusVSegmentationOutput`` with ``mask_logits_lowres [B, N, h, w]``,
            ``iou_scores [B, N]`` and ``object_score_logits [B, N]``.
        """
        if prompt_embeds.dim() != 3 or prompt_embeds.shape[0] != sam_pixel_values.shape[0]:
            raise ValueError(
                f"prompt_embeds must have shape [B, N, C] with B = {sam_pixel_values.shape[0]} images, "
                f"got {tuple(prompt_embeds.shape)}"
            )
        batch, per_image = prompt_embeds.shape[:2]
        features = self.encode_sam_images(sam_pixel_values)
        image_index = torch.arange(batch, device=prompt_embeds.device).repeat_interleave(per_image)
        logits, iou, obj = self.decode_masks(features, prompt_embeds.reshape(batch * per_image, -1), image_index)
        return CitrusVSegmentationOutput(
            mask_logits_lowres=logits.reshape(batch, per_image, *logits.shape[1:]),
            iou_scores=iou.reshape(batch, per_image),
            object_score_logits=obj.reshape(batch, per_image),
        )

    # ------------------------------------------------------------------ training forward
    def packed_position_ids(
        self,
        input_ids: torch.LongTensor,
        mm_token_type_ids: torch.IntTensor,
        image_grid_thw: torch.LongTensor | None,
        segment_ids: torch.LongTensor,
    ) -> torch.LongTensor:
        """Positions for packed rows: ``[4, B, T]`` = text positions restarting at every segment,
        then the three multimodal-RoPE rows computed for each segment alone.

        With these and no attention mask, transformers builds a block-diagonal causal mask, so no
        token attends to another sample of its row (recipe: shared ml-stack notes, §9).

        Args:
            segment_ids: ``[B, T]`` index of the sample each token belongs to (-1 on padding, which
                forms a segment of its own).
        """
        batch, width = input_ids.shape
        positions = torch.zeros(4, batch, width, dtype=torch.long, device=input_ids.device)
        grids = image_grid_thw if image_grid_thw is not None else input_ids.new_zeros((0, 3))
        next_image = 0
        image_token = mm_token_type_ids == 1
        for row in range(batch):
            ids = segment_ids[row]
            boundaries = torch.nonzero(ids[1:] != ids[:-1]).flatten().add(1).tolist()
            for start, end in zip([0, *boundaries], [*boundaries, width]):
                positions[0, row, start:end] = torch.arange(end - start, device=input_ids.device)
                images = image_token[row, start:end]
                count = int((images[1:] & ~images[:-1]).sum() + images[0]) if end > start else 0
                if count == 0:
                    positions[1:, row, start:end] = positions[0, row, start:end]
                    continue
                rope, _ = self.mllm.model.get_rope_index(
                    input_ids[row:row + 1, start:end], mm_token_type_ids[row:row + 1, start:end],
                    image_grid_thw=grids[next_image:next_image + count])
                positions[1:, row, start:end] = rope[:, 0]
                next_image += count
        if next_image != grids.shape[0]:
            raise ValueError(f"the rows hold {next_image} images but image_grid_thw describes {grids.shape[0]}")
        return positions

    @staticmethod
    def _flatten_packed_segmentation(sam_pixel_values: torch.Tensor, gt_masks: torch.Tensor,
                                     seg_image_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[B, N, 3, S, S]`` images, ``[B, M, 1, h, w]`` masks and ``[B, M]`` image indices (-1 =
        padding) → the flat ``[K, 3, S, S]``, ``[M', h, w]``, ``[M']`` form, row-major, keeping only
        the images some mask refers to."""
        if gt_masks.dim() != 5 or seg_image_index.shape != gt_masks.shape[:2]:
            raise ValueError(
                f"packed segmentation needs gt_masks [B, M, 1, h, w] and seg_image_index [B, M]; got "
                f"{tuple(gt_masks.shape)} and {tuple(seg_image_index.shape)}"
            )
        batch, slots = sam_pixel_values.shape[:2]
        valid = seg_image_index >= 0
        rows = torch.arange(batch, device=seg_image_index.device)[:, None].expand_as(seg_image_index)
        flat_owner = (rows * slots + seg_image_index)[valid]
        used, owner = torch.unique(flat_owner, return_inverse=True)
        images = sam_pixel_values.reshape(batch * slots, *sam_pixel_values.shape[2:])[used.to(sam_pixel_values.device)]
        return images, gt_masks[valid][:, 0], owner

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        labels: torch.LongTensor | None = None,
        sam_pixel_values: torch.Tensor | None = None,
        gt_masks: torch.Tensor | None = None,
        mask_image_index: torch.LongTensor | None = None,
        segment_ids: torch.LongTensor | None = None,
        seg_image_index: torch.LongTensor | None = None,
        num_masks_in_batch: int | float | torch.Tensor | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> CitrusVOutput:
        """LM loss plus the released mask losses.

        The k-th ``[SEG]`` of the batch (row-major over ``input_ids``) is paired with the k-th
        ground-truth mask. Rows without ``[SEG]`` and batches without masks are fine.

        Args:
            input_ids: ``[B, T]``.
            attention_mask: ``[B, T]`` (leave ``None`` for packed rows).
            position_ids: ``[3 or 4, B, T]`` mRoPE positions, or ``None`` to compute them.
            pixel_values, image_grid_thw, mm_token_type_ids: backbone image inputs.
            labels: ``[B, T]`` next-token targets, -100 where not supervised.
            sam_pixel_values: ``[K, 3, S, S]`` SAM2 images (one per segmentation sample), or
                ``[B, N, 3, S, S]`` per packed row together with ``seg_image_index``.
            gt_masks: ``[M, H, W]`` binary masks (resized nearest to ``h × w`` when needed), or
                ``[B, M, 1, h, w]`` per packed row.
            mask_image_index: ``[M]`` index into ``sam_pixel_values`` for each mask (flat form); may
                be omitted when K == M (one image per mask) or K == 1.
            segment_ids: ``[B, T]`` sample index of each token in packed rows (-1 on padding):
                positions restart per sample and no token attends across samples.
            seg_image_index: ``[B, M]`` image slot of each mask in packed rows (-1 = padding).
            num_masks_in_batch: masks in the whole (accumulated, all-device) batch; mask losses are
                then per-mask sums divided by it, so every mask weighs the same however the batch
                was split. By default they are means over this call's masks.
            use_cache: keep False for training and packed rows (a cache disables packed masking).
            logits_to_keep: passed to the LM head slicing (0 keeps all positions).

        Raises:
            ValueError: the number of ``[SEG]`` tokens differs from the number of masks, masks come
                without SAM images, or a tensor has the wrong shape (messages give both counts).
        """
        lm = self.mllm
        loss_kwargs = {k: kwargs.pop(k) for k in ("num_items_in_batch", "ignore_index") if k in kwargs}
        if segment_ids is not None:
            if attention_mask is not None:
                raise ValueError("packed rows (segment_ids) take no attention_mask: padding is its own segment")
            if mm_token_type_ids is None:
                mm_token_type_ids = torch.zeros_like(input_ids, dtype=torch.int32)
            if position_ids is None:
                position_ids = self.packed_position_ids(input_ids, mm_token_type_ids, image_grid_thw, segment_ids)
            use_cache = False
        outputs = lm.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            mm_token_type_ids=mm_token_type_ids,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = outputs.last_hidden_state  # [B, T, D], after the final norm
        kept = hidden if not logits_to_keep else hidden[:, -logits_to_keep:]
        logits = lm.lm_head(kept)
        lm_loss = None
        if labels is not None:
            lm_loss = lm.loss_function(
                logits=logits, labels=labels, vocab_size=lm.config.get_text_config().vocab_size, **loss_kwargs
            )

        seg_positions = input_ids == self.seg_token_id  # [B, T]
        seg_embeds = self.project_seg_hidden_states(hidden[seg_positions])  # [M, C]
        num_seg = seg_embeds.shape[0]

        mask_logits = iou = obj = bce = dice = None
        if gt_masks is not None:
            if sam_pixel_values is None:
                raise ValueError("gt_masks were given without sam_pixel_values")
            if sam_pixel_values.dim() == 5:
                if seg_image_index is None:
                    raise ValueError("[B, N, 3, S, S] SAM images need seg_image_index [B, M]")
                sam_pixel_values, gt_masks, mask_image_index = self._flatten_packed_segmentation(
                    sam_pixel_values, gt_masks, seg_image_index)
            if gt_masks.dim() != 3:
                raise ValueError(f"gt_masks must have shape [M, H, W], got {tuple(gt_masks.shape)}")
            if gt_masks.shape[0] != num_seg:
                per_row = seg_positions.sum(dim=1).tolist()
                raise ValueError(
                    f"the batch has {num_seg} [SEG] tokens (per row: {per_row}) but {gt_masks.shape[0]} masks"
                )
            mask_image_index = self._mask_image_index(mask_image_index, num_seg, sam_pixel_values.shape[0])
            if num_seg:
                features = self.encode_sam_images(sam_pixel_values)
                mask_logits, iou, obj = self.decode_masks(features, seg_embeds, mask_image_index)
                targets = self._targets_at_lowres(gt_masks)
                reduction = "mean" if num_masks_in_batch is None else "sum"
                bce = mask_bce_loss(mask_logits, targets, reduction=reduction)
                dice = mask_dice_loss(mask_logits, targets, eps=self.config.mask_dice_eps, reduction=reduction)
                if num_masks_in_batch is not None:
                    bce, dice = bce / num_masks_in_batch, dice / num_masks_in_batch

        loss = None
        terms = [t for t in (lm_loss,) if t is not None]
        if bce is not None:
            terms += [self.config.mask_bce_weight * bce, self.config.mask_dice_weight * dice]
        if terms:
            loss = torch.stack([t.float() for t in terms]).sum()
        return CitrusVOutput(
            loss=loss,
            lm_loss=lm_loss,
            mask_bce_loss=bce,
            mask_dice_loss=dice,
            logits=logits,
            seg_embeds=seg_embeds,
            mask_logits_lowres=mask_logits,
            iou_scores=iou,
            object_score_logits=obj,
            num_masks=num_seg,
        )

    @staticmethod
    def _mask_image_index(index: torch.Tensor | None, num_masks: int, num_images: int) -> torch.Tensor:
        if index is not None:
            index = torch.as_tensor(index, dtype=torch.long)
            if index.shape != (num_masks,):
                raise ValueError(f"mask_image_index must have shape [{num_masks}], got {tuple(index.shape)}")
            return index
        if num_images == num_masks:
            return torch.arange(num_masks)
        if num_images == 1:
            return torch.zeros(num_masks, dtype=torch.long)
        raise ValueError(
            f"{num_masks} masks and {num_images} SAM images: pass mask_image_index to say which image each mask is on"
        )

    def _targets_at_lowres(self, gt_masks: torch.Tensor) -> torch.Tensor:
        side = self.config.sam_lowres_mask_size
        targets = gt_masks.float()
        if tuple(targets.shape[1:]) != (side, side):
            targets = F.interpolate(targets[:, None], size=(side, side), mode="nearest")[:, 0]
        return (targets > 0).float()

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any):
        """Load our layout or the released Citrus-V layout from a folder (or a hub id).

        Keyword arguments: ``dtype`` (``"auto"`` = the checkpoint's, default; or a torch dtype),
        ``device`` / ``device_map`` (one device), ``config`` (a ``CitrusVConfig`` to use instead of
        the folder's), ``attn_implementation``, and hub options (``revision``, ``token``,
        ``cache_dir``, ``local_files_only``). See ``citrusv.model.checkpoint.load_citrus_v``.
        """
        from .checkpoint import load_citrus_v

        if args:
            raise TypeError("from_pretrained takes the path and keyword arguments only")
        return load_citrus_v(pretrained_model_name_or_path, model_class=cls, **kwargs)

    def save_pretrained(self, save_directory: str | Path, *, max_shard_size: int | str = "5GB",
                        is_main_process: bool = True, state_dict: dict[str, torch.Tensor] | None = None,
                        **kwargs: Any) -> None:
        """Write ``config.json`` and safetensors shards named after the modules (our layout).

        See ``citrusv.model.checkpoint.save_citrus_v``.
        """
        from .checkpoint import save_citrus_v

        unknown = set(kwargs) - {"safe_serialization"}
        if unknown or kwargs.get("safe_serialization") is False:
            raise TypeError(f"unsupported save_pretrained arguments: {sorted(unknown) or ['safe_serialization=False']}")
        save_citrus_v(self, save_directory, max_shard_size=max_shard_size, is_main_process=is_main_process,
                      state_dict=state_dict)
