"""``CurationConfig``: every setting of a curation run, loaded from YAML (``configs/curate/``)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dedup import DedupConfig
from .deid_dicom import DeidConfig
from .dicom_qc import QCConfig
from .filters import RegexRule
from .sources import SourceSpec

__all__ = ["CurationConfig", "FilterConfig", "LLMDeidConfig", "LLMEndpoint", "LLMTagConfig", "TaggingConfig", "load_config"]


@dataclass
class FilterConfig:
    """Quality filters."""

    min_image_pixels: int = 4096
    """Images with fewer pixels (width × height) are dropped."""
    min_tokens: int = 10
    max_tokens: int = 1024
    tokenizer: str | None = None
    """Folder or hub name of the model's tokenizer; ``None`` counts words and punctuation."""
    regex_rules: list[RegexRule] = field(default_factory=list)


@dataclass
class LLMEndpoint:
    """An OpenAI-compatible chat endpoint (``citrusv.llm.LLMClient``)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    """Environment variable holding the API key (never the key itself: the config is saved)."""
    cache_dir: str | None = None
    requests_per_minute: float | None = None

    def client(self) -> Any:
        """The ``LLMClient`` for this endpoint."""
        import os

        from ..llm import LLMClient

        return LLMClient(self.base_url, self.model, api_key=os.environ.get(self.api_key_env, "") if self.api_key_env else None,
                         cache_dir=self.cache_dir, requests_per_minute=self.requests_per_minute)


@dataclass
class LLMTagConfig(LLMEndpoint):
    """Task / region tags from an OpenAI-compatible endpoint (``citrusv.curate.llm_tagging``)."""

    kinds: list[str] = field(default_factory=lambda: ["task", "region"])
    overwrite: bool = False
    """Replace tags the rules (or the source) set, instead of filling only missing kinds."""


@dataclass
class LLMDeidConfig(LLMEndpoint):
    """LLM rewrite of dialogues without personal information (``citrusv.curate.llm_deid``)."""

    only_with_phi: bool = True
    """Send only dialogues in which the rule-based finder sees PHI (the others cost no request)."""
    prompt_version: int | None = None
    """Version of the ``deid_rewrite`` prompt (default: the newest)."""


@dataclass
class TaggingConfig:
    """Taxonomy tagging: rules, then optionally an LLM."""

    enabled: bool = True
    overwrite: bool = False
    extra_rules: dict[str, list[list[str]]] = field(default_factory=dict)
    """``{"modality" | "task" | "region": [[regex, tag], ...]}`` tried before the built-in rules."""
    modality_model: str | None = None
    """``.npz`` from ``citrusv curate train-modality``: tags image rows the rules left without a modality."""
    modality_min_confidence: float = 0.8
    llm: LLMTagConfig | None = None


@dataclass
class CurationConfig:
    """One curation run. Paths in ``sources`` are relative to the working directory."""

    sources: list[SourceSpec] = field(default_factory=list)
    shard_size: int = 1000
    """Rows (for DICOM: folders) per shard; the unit of parallelism and of resume."""
    workers: int = 2
    """Worker processes (spawn); 0 runs every stage in the main process."""
    engine: str = "local"
    """``local`` (spawned processes) or ``ray`` (Ray Data: a dataset of shard specs mapped by a pool of
    ``workers`` actors, results returned in shard order; ``RAY_ADDRESS`` joins a cluster, else a local
    Ray instance is started). Workers read their own shards either way; dedup and commits stay in the
    driver."""
    filters: FilterConfig = field(default_factory=FilterConfig)
    llm_deid: LLMDeidConfig | None = None
    """Rewrite doctor–patient dialogues through an LLM, keeping only the medical content (before
    the rule-based scrubbing; a rewrite that fails its checks drops the row with the reason)."""
    text_deid: bool = True
    """Scrub PHI from message text with ``citrusv.curate.phi.scrub_phi``."""
    dedup: DedupConfig = field(default_factory=DedupConfig)
    dicom_qc: QCConfig = field(default_factory=QCConfig)
    dicom_deid: bool = True
    """De-identify DICOM series (PS3.15 Basic Profile) into ``<out>/dicom``; off keeps source paths."""
    deid: DeidConfig = field(default_factory=DeidConfig)
    deid_secret_file: str | None = None
    """Hex secret for UID remapping / date shifts; ``None``: ``<out>/private/deid.key`` (created;
    keep ``private/`` away from the shared data)."""
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    charts: bool = True
    """Write PNG charts of tag distributions and drop reasons (needs matplotlib)."""

    def __post_init__(self) -> None:
        if self.shard_size <= 0:
            raise ValueError(f"shard_size must be positive, got {self.shard_size}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CurationConfig:
        """Build from nested plain values (as in YAML); unknown keys raise ``ValueError``."""
        return _build(cls, values, "config")


def _build(kind: Any, values: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if isinstance(values, kind):
            return values
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a mapping for {kind.__name__}, got {type(values).__name__}")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} for {kind.__name__}; known: {sorted(names)}")
        return kind(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in values.items()})
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType) and isinstance(values, dict):
        inner = [a for a in args if dataclasses.is_dataclass(a)]
        if inner:
            return _build(inner[0], values, where)
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        if isinstance(values, (str, dict)) and args[0] is SourceSpec:
            values = [values]
        return [_build(args[0], {"path": v} if isinstance(v, str) and args[0] is SourceSpec else v, f"{where}[{i}]")
                for i, v in enumerate(values)]
    return values


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> CurationConfig:
    """Read a YAML config (``None``: the built-in defaults) and apply dotted ``overrides``
    (``{"dedup.text_threshold": 0.9}``)."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = values
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return CurationConfig.from_dict(values)
