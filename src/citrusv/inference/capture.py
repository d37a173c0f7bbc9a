"""Capturing ``[SEG]`` hidden states during one ``generate()`` call.

The release generates twice (once for text, once with all hidden states). Here two hooks record,
during the single generation pass, the final-norm hidden state (what feeds ``lm_head``) at every
position whose *input* token is ``[SEG]`` (the LISA / Sa2VA / Citrus-V convention used in
training):

* a forward pre-hook on the backbone records each step's ``input_ids``, the cache length before
  the step (the column offset of the step's tokens in the padded sequence) and the step kwargs;
* a forward hook on the LLM's final norm keeps ``hidden[input_ids == [SEG]]``.

``generate()`` never feeds its last token back, so a ``[SEG]`` emitted as the final token (when
generation stops right after it) gets one extra decode step (``finish``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["SegHiddenStates", "SegStateCapture"]


@dataclass
class SegHiddenStates:
    """``[SEG]`` states of one batch, per row, ordered by position.

    Attributes:
        generated: per row, ``[k, D]`` states of the generated ``[SEG]`` tokens (k-th = k-th).
        prompt_counts: per row, how many ``[SEG]`` tokens sat in the prompt (not turned into masks).
        extra_steps: decode steps run after ``generate()`` for a trailing ``[SEG]`` (0 or 1).
    """

    generated: list[torch.Tensor]
    prompt_counts: list[int]
    extra_steps: int = 0


@dataclass
class _Step:
    input_ids: torch.Tensor
    offset: int
    kwargs: dict[str, Any] = field(default_factory=dict)


class SegStateCapture:
    """Context manager recording ``[SEG]`` hidden states while a backbone generates.

    Args:
        backbone: a transformers Qwen2.5-VL / Qwen3-VL ``...ForConditionalGeneration``.
        seg_token_id: id of ``[SEG]``.
    """

    def __init__(self, backbone: nn.Module, seg_token_id: int):
        self.backbone = backbone
        self.norm = backbone.model.language_model.norm
        self.seg_token_id = seg_token_id
        self.records: dict[tuple[int, int], torch.Tensor] = {}
        self.last_step: _Step | None = None
        self._handles: list[Any] = []

    def __enter__(self) -> SegStateCapture:
        self.records.clear()
        self.last_step = None
        self._handles = [
            self.backbone.register_forward_pre_hook(self._before_step, with_kwargs=True),
            self.norm.register_forward_hook(self._after_norm),
        ]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _before_step(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        offset = int(cache.get_seq_length()) if cache is not None else 0
        self.last_step = _Step(input_ids=input_ids, offset=offset, kwargs=kwargs)

    def _after_norm(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        step = self.last_step
        if step is None or step.input_ids is None:
            return
        hits = step.input_ids == self.seg_token_id
        if not hits.any():
            return
        rows, cols = hits.nonzero(as_tuple=True)
        states = output[rows, cols].detach()
        # Without a cache every step re-runs the whole sequence: later records overwrite.
        for row, col, state in zip(rows.tolist(), cols.tolist(), states):
            self.records[(row, step.offset + col)] = state

    def finish(self, sequences: torch.Tensor, prompt_width: int) -> SegHiddenStates:
        """Complete the records after ``generate()`` returned ``sequences`` ``[B, L]``.

        Runs one extra decode step when a row ends with a ``[SEG]`` whose input state was never
        computed, then groups the states per row.

        Raises:
            RuntimeError: a record points at a position that does not hold ``[SEG]`` (would mean
                the hooks saw a different sequence than ``generate()`` returned).
        """
        batch, length = sequences.shape
        extra = 0
        trailing = sequences[:, -1] == self.seg_token_id
        if trailing.any() and any((row, length - 1) not in self.records for row in trailing.nonzero()[:, 0].tolist()):
            self._extra_step(sequences)
            extra = 1
        generated: list[list[tuple[int, torch.Tensor]]] = [[] for _ in range(batch)]
        prompt_counts = [0] * batch
        for (row, col), state in self.records.items():
            if col >= length:  # a step undone by the generation loop (e.g. deferred stop checks)
                continue
            if int(sequences[row, col]) != self.seg_token_id:
                raise RuntimeError(f"captured a [SEG] state at row {row}, column {col}, which holds token "
                                   f"{int(sequences[row, col])}")
            if col < prompt_width:
                prompt_counts[row] += 1
            else:
                generated[row].append((col, state))
        width = self.norm.weight.shape[0]
        states = [torch.stack([s for _, s in sorted(items, key=lambda x: x[0])]) if items
                  else sequences.new_zeros((0, width), dtype=self.norm.weight.dtype)
                  for items in generated]
        return SegHiddenStates(generated=states, prompt_counts=prompt_counts, extra_steps=extra)

    @torch.no_grad()
    def _extra_step(self, sequences: torch.Tensor) -> None:
        """Feed the final token once more, continuing the last recorded step.

        With a cache only the new token runs; without one (``use_cache=False``) the whole
        sequence runs again, reusing the step's precomputed image features.
        """
        step = self.last_step
        if step is None:  # pragma: no cover - generate always runs at least one step
            raise RuntimeError("no generation step was recorded")
        call = dict(step.kwargs)
        cached = call.get("cache", call.get("past_key_values")) is not None
        batch = sequences.shape[0]

        def extend(name: str, column: torch.Tensor) -> None:
            value = call.get(name)
            if value is not None:
                call[name] = column if cached else torch.cat([value, column], dim=-1)

        call["input_ids"] = sequences[:, -1:] if cached else sequences
        if cached:  # the images are in the cache already (matters when the last step was the prefill)
            for key in ("pixel_values", "pixel_values_videos", "image_grid_thw", "video_grid_thw", "mm_encoder_outputs"):
                call.pop(key, None)
        if call.get("attention_mask") is not None:
            mask = call["attention_mask"]
            call["attention_mask"] = torch.cat([mask, mask.new_ones((batch, 1))], dim=1)
        if call.get("position_ids") is not None:
            extend("position_ids", call["position_ids"][..., -1:] + 1)
        if call.get("mm_token_type_ids") is not None:
            extend("mm_token_type_ids", call["mm_token_type_ids"].new_zeros((batch, 1)))
        call["logits_to_keep"] = 1
        self.backbone(**call)
