"""Training configuration: one documented dataclass, one YAML preset per stage.

``configs/train/stage{1,2,3,4}.yaml`` hold the paper's Table 4; every field can be overridden
on the command line (``--max-length 4096``, ``--lr-seg 1e-4``, ``--set key=value``). The resolved
config is saved as ``train_config.yaml`` next to every checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["COMPONENTS", "TrainConfig", "load_stage_config", "stage_config_path"]

#: Trainable components, as named in the paper's Table 4.
COMPONENTS = ("llm", "vit", "aligner", "seg")

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"


@dataclass
class TrainConfig:
    """Settings of one training stage.

    Learning rates are per component (``llm``: the language model and its output head; ``vit``:
    the vision tower without its merger; ``aligner``: the ViT→LLM merger(s); ``seg``: the
    segmentation projector and all of SAM2). ``None`` freezes the component.
    """

    stage: int = 3
    """Stage number (1-4), for the record."""
    name: str = "instruction_finetuning"
    """Stage name, for logs."""
    learning_rates: dict[str, float | None] = field(default_factory=lambda: {"llm": 1e-5, "vit": 2e-6, "aligner": 1e-5, "seg": 1e-5})
    """Peak learning rate per component; ``None`` = frozen."""
    seg_grad_scale: float = 1.0
    """Factor applied to the gradients of the segmentation modules (stage 3: 0.001)."""
    epochs: float = 1.0
    """Passes over the data (fractions allowed)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides ``epochs`` when set)."""
    per_device_batch_size: int = 1
    """Packed rows (or padded samples) per device and micro-step."""
    gradient_accumulation_steps: int = 8
    """Micro-steps per optimizer step."""
    max_length: int = 12288
    """Tokens per packed row / longest sample."""
    packing: bool = True
    """Best-fit packing of samples into rows of ``max_length`` tokens; ``False`` pads each sample."""
    weight_decay: float = 0.1
    """AdamW weight decay (not applied to biases and norm weights)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    warmup_steps: int = 100
    """Linear warm-up before the cosine decay."""
    min_lr_ratio: float = 0.0
    """Cosine decays to ``min_lr_ratio · peak``."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping (0 disables)."""
    mixed_precision: str = "auto"
    """``"auto"`` (bf16 where the hardware has it, else no), ``"bf16"``, ``"fp16"`` or ``"no"``."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass to save memory."""
    image_min_pixels: int | None = 200704
    """Qwen smart-resize floor (the release's stage 3/4 value)."""
    image_max_pixels: int | None = 1003520
    """Qwen smart-resize budget (the release's stage 3/4 value)."""
    seed: int = 42
    """Seed for initialisation, data order and dropout."""
    save_steps: int = 500
    """Checkpoint every N optimizer steps (and at the end)."""
    save_total_limit: int | None = 3
    """Keep at most this many step checkpoints (``None`` keeps all)."""
    logging_steps: int = 10
    """Log every N optimizer steps."""
    tensorboard: bool = True
    """Also write TensorBoard event files (needs the ``tensorboard`` package)."""
    plot: bool = True
    """Plot the loss curves to PNG at the end (needs ``matplotlib``)."""

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)
        problems = []
        unknown = set(self.learning_rates) - set(COMPONENTS)
        if unknown:
            problems.append(f"learning_rates has unknown components {sorted(unknown)} (expected {COMPONENTS})")
        self.learning_rates = {c: self.learning_rates.get(c) for c in COMPONENTS}
        for component, rate in self.learning_rates.items():
            if rate is not None and rate <= 0:
                problems.append(f"learning_rates.{component} must be > 0 or null (frozen), got {rate}")
        if all(rate is None for rate in self.learning_rates.values()):
            problems.append("every component is frozen: nothing would train")
        if not 0 < self.seg_grad_scale <= 1:
            problems.append(f"seg_grad_scale must be in (0, 1], got {self.seg_grad_scale}")
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "max_length", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs <= 0 and not self.max_steps:
            problems.append(f"epochs must be > 0, got {self.epochs}")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            problems.append(f"mixed_precision must be auto, bf16, fp16 or no, got {self.mixed_precision!r}")
        if self.warmup_steps < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            problems.append("warmup_steps, max_grad_norm and weight_decay must be >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    # ------------------------------------------------------------------ IO
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a training config must be a mapping")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["adam_betas"] = list(self.adam_betas)
        return values

    def save(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with dotted-key overrides applied (``{"learning_rates.seg": 1e-4, "epochs": 2}``)."""
        values = self.to_dict()
        for key, value in overrides.items():
            head, _, tail = key.partition(".")
            if tail:
                if not isinstance(values.get(head), dict):
                    raise ValueError(f"cannot override {key!r}: {head!r} is not a mapping")
                values[head] = {**values[head], tail: value}
            else:
                values[head] = value
        return TrainConfig.from_dict(values)


def stage_config_path(stage: int) -> Path:
    """``configs/train/stage<N>.yaml`` of a source checkout."""
    return CONFIG_DIR / f"stage{stage}.yaml"


def load_stage_config(stage: int, config_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset of a stage (or ``config_path``), with overrides applied.

    Raises:
        ValueError: unknown stage, unknown keys, invalid values (all named).
        FileNotFoundError: the preset file is missing.
    """
    if config_path is None:
        if stage not in (1, 2, 3, 4):
            raise ValueError(f"stage must be 1, 2, 3 or 4, got {stage}")
        config_path = stage_config_path(stage)
    config = TrainConfig.from_yaml(config_path)
    if overrides:
        config = config.with_overrides(overrides)
    return config
