"""Which parameters train, at which learning rate: one prefix table per backbone.

Components (the paper's Table 4): ``llm`` = the language model and ``lm_head``; ``vit`` = the
vision tower without its merger(s); ``aligner`` = the ViT→LLM merger(s); ``seg`` = the
segmentation projector and all of SAM2. Every parameter belongs to exactly one component; a
component whose learning rate is ``None`` is frozen (``requires_grad=False``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import COMPONENTS, TrainConfig

__all__ = ["ComponentCounts", "apply_freezing", "component_of", "component_prefixes", "dry_run_table", "optimizer_groups"]


def component_prefixes(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """Parameter-name prefixes of each component for this model's backbone."""
    spec = model.backbone
    mllm = "mllm."
    aligner = tuple(mllm + p for p in spec.aligner_prefixes)
    return {
        "aligner": aligner,  # checked before "vit": the mergers sit inside the vision tower
        "vit": (mllm + spec.vision_tower_prefix,),
        "llm": (mllm + spec.language_model_prefix, mllm + spec.lm_head_prefix),
        "seg": ("seg_projector", "sam2"),
    }


def component_of(name: str, prefixes: dict[str, tuple[str, ...]]) -> str:
    """The component a parameter belongs to.

    Raises:
        ValueError: the name matches no component prefix (a table out of date with the model).
    """
    for component in ("aligner", "vit", "llm", "seg"):
        if any(name == p or name.startswith(p + ".") for p in prefixes[component]):
            return component
    raise ValueError(f"parameter {name!r} belongs to no component; update the prefix table")


def apply_freezing(model: nn.Module, config: TrainConfig) -> dict[str, str]:
    """Set ``requires_grad`` from the config; returns parameter name → component."""
    prefixes = component_prefixes(model)
    owners = {}
    for name, param in model.named_parameters():
        component = component_of(name, prefixes)
        owners[name] = component
        param.requires_grad_(config.learning_rates[component] is not None)
    return owners


def _decays(name: str, param: nn.Parameter) -> bool:
    # Biases, norm weights, embeddings of single tokens and positional tables do not decay.
    return param.ndim >= 2 and not name.endswith(("bias", "pos_embed", "pos_embed_window"))


def optimizer_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: one per (component, decay / no decay), frozen parameters left out."""
    prefixes = component_prefixes(model)
    groups: dict[tuple[str, bool], list[nn.Parameter]] = defaultdict(list)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        groups[(component_of(name, prefixes), _decays(name, param))].append(param)
    out = []
    for component in COMPONENTS:
        for decay in (True, False):
            params = groups.get((component, decay))
            if params:
                out.append({"params": params, "lr": config.learning_rates[component],
                            "weight_decay": config.weight_decay if decay else 0.0,
                            "name": f"{component}{'' if decay else '/no_decay'}"})
    return out


@dataclass(frozen=True)
class ComponentCounts:
    """Parameter counts of one component."""

    component: str
    trainable: int
    frozen: int
    learning_rate: float | None


def dry_run_table(model: nn.Module, config: TrainConfig) -> tuple[list[ComponentCounts], list[dict[str, Any]], str]:
    """Counts per component and per optimizer group, and the printable table.

    Call after ``apply_freezing``.
    """
    prefixes = component_prefixes(model)
    trainable: dict[str, int] = defaultdict(int)
    frozen: dict[str, int] = defaultdict(int)
    for name, param in model.named_parameters():
        bucket = trainable if param.requires_grad else frozen
        bucket[component_of(name, prefixes)] += param.numel()
    counts = [ComponentCounts(c, trainable[c], frozen[c], config.learning_rates[c]) for c in COMPONENTS]
    groups = [{"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"],
               "tensors": len(g["params"]), "parameters": sum(p.numel() for p in g["params"])}
              for g in optimizer_groups(model, config)]
    lines = [f"stage {config.stage} ({config.name}); segmentation gradient scale {config.seg_grad_scale:g}",
             f"{'component':<10} {'trainable':>14} {'frozen':>14}  learning rate"]
    for row in counts:
        rate = "frozen" if row.learning_rate is None else f"{row.learning_rate:g}"
        lines.append(f"{row.component:<10} {row.trainable:>14,} {row.frozen:>14,}  {rate}")
    total_t, total_f = sum(r.trainable for r in counts), sum(r.frozen for r in counts)
    lines.append(f"{'total':<10} {total_t:>14,} {total_f:>14,}")
    lines.append("")
    lines.append(f"{'optimizer group':<20} {'lr':>10} {'decay':>6} {'tensors':>8} {'parameters':>14}")
    for group in groups:
        lines.append(f"{group['name']:<20} {group['lr']:>10g} {group['weight_decay']:>6g} {group['tensors']:>8} "
                     f"{group['parameters']:>14,}")
    return counts, groups, "\n".join(lines)
