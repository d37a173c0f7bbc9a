"""Reading and writing Citrus-V checkpoints, and assembling one from its parts.

Layouts read by ``load_citrus_v``:

* **native** (``save_citrus_v``): ``mllm.*`` with transformers v5 in-memory names, ``sam2.*``
  with transformers ``Sam2Model`` names, ``seg_projector.{0,2}.*``.
* **released** (Citrus-V-8B-v1.0): ``mllm.*`` as above, ``grounding_encoder.sam2_model.*`` with the
  original SAM2 package's names (video-memory weights included, dropped on load),
  ``seg_projector.{0,2}.*``.

Weights are streamed: the model is built with its parameters on the ``meta`` device, and each
tensor is read from its safetensors file straight into the storage that becomes the parameter,
so a checkpoint is never held twice in memory (a dtype conversion costs one extra tensor at a
time). Missing files, missing or unexpected weights and shape mismatches are errors that name
the file or key.

``assemble_citrus_v`` builds a fresh model from a Qwen2.5-VL / Qwen3-VL folder (hub layout) and
an original SAM2 ``.pt`` or a transformers SAM2 folder, with a randomly initialised projector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .sam2_conversion import plan_original_sam2_keys

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "LoadReport",
    "SafetensorsFolder",
    "assemble_citrus_v",
    "detect_layout",
    "load_citrus_v",
    "parameters_on_meta",
    "resolve_model_dir",
    "save_citrus_v",
]

RELEASED_SAM2_PREFIX = "grounding_encoder.sam2_model."
SAM2_PREFIX = "sam2."

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


class CheckpointError(ValueError):
    """A checkpoint folder cannot be loaded as asked; the message names the file or weight."""


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class _TensorEntry:
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    nbytes: int


class SafetensorsFolder:
    """Index of the tensors in one ``model.safetensors`` or a sharded set with its index file.

    Only headers are read on construction; ``read`` fetches one tensor with plain file IO (no
    mmap, so nothing but the returned tensor stays resident).

    Raises:
        CheckpointError: no weights file, a shard named by the index is absent, or a header is
            malformed / the file is shorter than its header says.
    """

    def __init__(self, folder: str | Path, entries: Mapping[str, _TensorEntry] | None = None):
        self.folder = Path(folder)
        self.entries: dict[str, _TensorEntry] = dict(entries) if entries is not None else self._scan()

    def _scan(self) -> dict[str, _TensorEntry]:
        index = self.folder / "model.safetensors.index.json"
        single = self.folder / "model.safetensors"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as err:
                raise CheckpointError(f"{index} is not a valid safetensors index ({err})") from None
            files = sorted(set(weight_map.values()))
            missing = [f for f in files if not (self.folder / f).is_file()]
            if missing:
                lost = [k for k, f in weight_map.items() if f == missing[0]][:3]
                raise CheckpointError(
                    f"{self.folder}: shard file(s) {missing} named in {index.name} are missing "
                    f"(they hold e.g. {lost})"
                )
            entries: dict[str, _TensorEntry] = {}
            for name in files:
                entries.update(_read_header(self.folder / name))
            absent = sorted(set(weight_map) - set(entries))
            if absent:
                raise CheckpointError(f"{index} lists weights that are not in their shard, e.g. {absent[:3]}")
            return entries
        if single.is_file():
            return _read_header(single)
        raise CheckpointError(f"{self.folder} has no model.safetensors or model.safetensors.index.json")

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.entries[key].shape

    def dtype(self, key: str) -> torch.dtype:
        return self.entries[key].dtype

    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Read one tensor, converted to ``dtype`` if given."""
        entry = self.entries[key]
        tensor = torch.empty(entry.shape, dtype=entry.dtype)
        if entry.nbytes:
            buffer = tensor.reshape(-1).view(torch.uint8).numpy()
            with open(entry.file, "rb") as handle:
                handle.seek(entry.start)
                got = handle.readinto(memoryview(buffer))
            if got != entry.nbytes:
                raise CheckpointError(f"{entry.file.name}: {key!r} is truncated ({got} of {entry.nbytes} bytes)")
        if dtype is not None and dtype != tensor.dtype:
            tensor = tensor.to(dtype)
        return tensor


def _read_header(path: Path) -> dict[str, _TensorEntry]:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"{path} is not a safetensors file (shorter than 8 bytes)")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > min(size - 8, 100_000_000):
            raise CheckpointError(f"{path} is not a safetensors file (header length {header_len} exceeds the file)")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{path}: unreadable safetensors header ({err})") from None
    data_start = 8 + header_len
    entries: dict[str, _TensorEntry] = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = _DTYPES[meta["dtype"]]
            shape = tuple(int(s) for s in meta["shape"])
            begin, end = (int(x) for x in meta["data_offsets"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: malformed header entry for {key!r} ({err})") from None
        if data_start + end > size:
            raise CheckpointError(
                f"{path.name}: {key!r} ends at byte {data_start + end} but the file has {size} bytes (truncated file)"
            )
        entries[key] = _TensorEntry(path, dtype, shape, data_start + begin, end - begin)
    return entries


class _TorchStateDictSource:
    """An original SAM2 ``.pt`` (``{"model": state_dict}``), memory-mapped."""

    def __init__(self, path: Path):
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # torch raises many types for a bad pickle
            raise CheckpointError(f"cannot read SAM2 checkpoint {path}: {err}") from None
        state = blob.get("model", blob) if isinstance(blob, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} holds no state dict (expected {{'model': state_dict}})")
        self.state = state

    def keys(self) -> list[str]:
        return list(self.state)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.state[key].shape)

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        tensor = self.state[key]
        return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor.clone()


# ------------------------------------------------------------------------------ planning
@dataclass
class _Source:
    reader: Any
    keys: tuple[str, ...]  # one key: copy; several: concatenate along dim 0


@dataclass
class LoadReport:
    """What a load did: the layout read, weights loaded, and video-only SAM2 weights dropped."""

    layout: str
    loaded: int = 0
    dropped: list[str] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)


def detect_layout(keys: list[str]) -> str:
    """``"released"`` when SAM2 sits under ``grounding_encoder.sam2_model.``, else ``"native"``."""
    return "released" if any(k.startswith(RELEASED_SAM2_PREFIX) for k in keys) else "native"


def _plan_checkpoint(reader: SafetensorsFolder) -> tuple[dict[str, _Source], list[str], list[str], str]:
    keys = reader.keys()
    layout = detect_layout(keys)
    plan: dict[str, _Source] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    sam_keys = [k for k in keys if k.startswith(RELEASED_SAM2_PREFIX)] if layout == "released" else []
    if sam_keys:
        sam_plan = plan_original_sam2_keys(sam_keys, src_prefix=RELEASED_SAM2_PREFIX, dst_prefix=SAM2_PREFIX)
        plan.update({t: _Source(reader, s) for t, s in sam_plan.sources.items()})
        dropped, unexpected = sam_plan.dropped, sam_plan.unexpected
    sam_set = set(sam_keys)
    for key in keys:
        if key not in sam_set:
            plan[key] = _Source(reader, (key,))
    return plan, dropped, unexpected, layout


# ------------------------------------------------------------------------------ model shell
@contextlib.contextmanager
def parameters_on_meta(dtype: torch.dtype) -> Iterator[None]:
    """Build modules with parameters on ``meta`` (buffers stay real), in ``dtype``.

    Buffers such as rotary frequencies are computed at construction and not stored in
    checkpoints, so they must be real; parameters are filled from the checkpoint afterwards.
    """
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    previous_dtype = torch.get_default_dtype()
    nn.Module.register_parameter = register_on_meta
    if dtype.is_floating_point:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        nn.Module.register_parameter = original
        torch.set_default_dtype(previous_dtype)


def _set_tensor(model: nn.Module, key: str, value: torch.Tensor) -> None:
    module_name, _, name = key.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    if name in module._parameters:
        old = module._parameters[name]
        module._parameters[name] = nn.Parameter(value, requires_grad=old.requires_grad)
    elif name in module._buffers:
        module._buffers[name] = value
    else:  # pragma: no cover - keys come from the model's own state dict
        raise KeyError(key)


def _fill_model(model: nn.Module, plan: Mapping[str, _Source], dtype: torch.dtype, source_name: str,
                progress: bool = False, already_set: set[str] = frozenset()) -> tuple[int, list[str]]:
    """Copy planned tensors into ``model``; returns (#loaded, tied targets).

    ``already_set`` names weights given real values beforehand (a new projector when assembling).

    Raises:
        CheckpointError: missing weights, unexpected weights or shape mismatches.
    """
    expected = model.state_dict(keep_vars=True)
    tied = model.get_expanded_tied_weights_keys(all_submodels=True) if hasattr(model, "get_expanded_tied_weights_keys") else {}
    unexpected = sorted(set(plan) - set(expected))
    if unexpected:
        raise CheckpointError(
            f"{source_name} has {len(unexpected)} weight(s) the model does not have, e.g. {unexpected[:5]}"
        )
    missing = sorted(k for k in expected
                     if k not in plan and k not in already_set and not (k in tied and tied[k] in plan))
    if missing:
        raise CheckpointError(f"{source_name} lacks {len(missing)} weight(s) the model needs, e.g. {missing[:5]}")

    mismatched = []
    for key, source in plan.items():
        shapes = [tuple(source.reader.shape(k)) for k in source.keys]
        shape = shapes[0] if len(shapes) == 1 else (sum(s[0] for s in shapes), *shapes[0][1:])
        if shape != tuple(expected[key].shape):
            mismatched.append(f"{key}: checkpoint {list(shape)} vs model {list(expected[key].shape)}")
    if mismatched:
        raise CheckpointError(f"{source_name}: {len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:5]))

    items = plan.items()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(plan), desc="loading weights", unit="tensor")
    for key, source in items:
        target = expected[key]
        want = dtype if target.is_floating_point() else target.dtype
        parts = [source.reader.read(k, want) for k in source.keys]
        value = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        _set_tensor(model, key, value)
    tied_targets = [k for k in tied if k not in plan]
    if tied_targets:
        model.tie_weights()
    still_meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if still_meta:  # pragma: no cover - guarded by the missing-key check above
        raise CheckpointError(f"{source_name}: parameters left unloaded: {still_meta[:5]}")
    return len(plan), tied_targets


# ------------------------------------------------------------------------------ public API
def resolve_model_dir(name_or_path: str | Path, *, revision: str | None = None, token: str | None = None,
                      cache_dir: str | None = None, local_files_only: bool = False) -> Path:
    """A local folder as is, or a hub id downloaded with ``huggingface_hub`` (needs internet).

    Raises:
        FileNotFoundError: neither a folder nor a downloadable hub repository.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FileNotFoundError(f"{path} is a file; a checkpoint is a folder with config.json and safetensors")
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", str(name_or_path)):
        raise FileNotFoundError(f"no checkpoint folder at {path}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(
            str(name_or_path), revision=revision, token=token, cache_dir=cache_dir,
            local_files_only=local_files_only,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model", "*.tiktoken"],
        ))
    except Exception as err:  # hub errors come in many classes (offline, 404, auth)
        raise FileNotFoundError(f"{name_or_path!r} is not a local folder and could not be fetched from the hub: {err}") from None


def _resolve_dtype(dtype: Any, config_dtype: Any, reader: SafetensorsFolder) -> torch.dtype:
    if dtype is None or dtype == "auto":
        if isinstance(config_dtype, torch.dtype) and config_dtype.is_floating_point:
            return config_dtype
        floats = [e.dtype for e in reader.entries.values() if e.dtype.is_floating_point]
        return floats[0] if floats else torch.float32
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        dtype = getattr(torch, dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype or 'auto', got {dtype!r}")
    return dtype


# Keyword arguments transformers' Auto classes pass along; none changes how we load.
_IGNORABLE_HF_KWARGS = frozenset({
    "trust_remote_code", "low_cpu_mem_usage", "use_safetensors", "_from_auto", "_from_pipeline", "subfolder",
    "force_download", "proxies", "adapter_kwargs", "adapter_name", "code_revision", "_commit_hash",
    "output_loading_info", "key_mapping",
})
_HARMLESS_HF_KWARGS = frozenset({"_from_auto", "_from_pipeline", "use_safetensors", "low_cpu_mem_usage", "trust_remote_code"})


def load_citrus_v(
    name_or_path: str | Path,
    *,
    model_class: type | None = None,
    config: Any = None,
    dtype: Any = "auto",
    torch_dtype: Any = None,
    device: str | torch.device | None = None,
    device_map: str | torch.device | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool = False,
    progress: bool = False,
    return_report: bool = False,
    **unused: Any,
):
    """Load a Citrus-V checkpoint (native or released layout).

    Args:
        name_or_path: checkpoint folder or hub id.
        model_class: class to build (``CitrusVForConditionalGeneration`` by default).
        config: a ``CitrusVConfig`` overriding the folder's ``config.json``.
        dtype: ``"auto"`` (the config's ``dtype``, else the weights'), a torch dtype or its name.
        device: where the model ends up (``device_map`` is accepted as an alias for one device).
        attn_implementation: ``"sdpa"`` (default), ``"eager"``, ``"flash_attention_2"``.
        progress: show a progress bar while tensors are read.
        return_report: also return a ``LoadReport``.

    Raises:
        FileNotFoundError: the folder or its ``config.json`` is missing.
        CheckpointError: weights missing, unexpected or of the wrong shape; a shard missing or
            truncated (the message names the key or file).
    """
    from .configuration_citrus_v import CitrusVConfig
    from .modeling_citrus_v import CitrusVForConditionalGeneration

    unsupported = sorted(set(unused) - _IGNORABLE_HF_KWARGS)
    if unsupported:
        raise TypeError(f"load_citrus_v got unsupported arguments: {unsupported}")
    meaningful = sorted(k for k, v in unused.items() if v not in (None, False, "", {}) and k not in _HARMLESS_HF_KWARGS)
    if meaningful:
        logger.warning("load_citrus_v ignores %s", meaningful)
    if torch_dtype is not None:
        dtype = torch_dtype
    if device_map is not None:
        if device is not None or isinstance(device_map, dict):
            raise ValueError("pass one device as `device` (multi-device maps are not supported)")
        device = ("cuda" if torch.cuda.is_available() else "cpu") if device_map == "auto" else device_map
    model_class = model_class or CitrusVForConditionalGeneration
    folder = resolve_model_dir(name_or_path, revision=revision, token=token, cache_dir=cache_dir,
                               local_files_only=local_files_only)
    if config is None:
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} has no config.json")
        config = CitrusVConfig.from_pretrained(folder)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    elif getattr(config, "_attn_implementation", None) is None:
        config._attn_implementation = "sdpa"
    reader = SafetensorsFolder(folder)
    plan, dropped, unexpected, layout = _plan_checkpoint(reader)
    if unexpected:
        raise CheckpointError(f"{folder}: {len(unexpected)} SAM2 weight(s) with unknown names, e.g. {unexpected[:5]}")
    target_dtype = _resolve_dtype(dtype, getattr(config, "dtype", None), reader)

    with parameters_on_meta(target_dtype):
        model = model_class(config)
    loaded, tied = _fill_model(model, plan, target_dtype, str(folder), progress=progress)
    model.config.dtype = target_dtype
    model.eval()
    if device is not None:
        model.to(device)
    if dropped:
        logger.info("dropped %d video-only SAM2 weights (memory attention / encoder, object pointers)", len(dropped))
    logger.info("loaded %s (%s layout, %d tensors, %s)", folder, layout, loaded, target_dtype)
    report = LoadReport(layout=layout, loaded=loaded, dropped=dropped, tied=tied)
    return (model, report) if return_report else model


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B\s*", size.upper())
    if not match:
        raise ValueError(f"cannot parse shard size {size!r} (use e.g. '5GB' or an int of bytes)")
    return int(float(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)])


def save_citrus_v(model: nn.Module, save_directory: str | Path, *, max_shard_size: int | str = "5GB",
                  is_main_process: bool = True, state_dict: Mapping[str, torch.Tensor] | None = None) -> list[Path]:
    """Write ``config.json`` and safetensors named after the modules (native layout).

    Each file is written under a temporary name and renamed into place, so a crash never leaves
    a half-written checkpoint behind a valid name. Tied weights are stored once.

    Returns:
        The weight files written.
    """
    from safetensors.torch import save_file

    if not is_main_process:
        return []
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    state = dict(state_dict if state_dict is not None else model.state_dict())
    tied = model.get_expanded_tied_weights_keys(all_submodels=True) if hasattr(model, "get_expanded_tied_weights_keys") else {}
    for target, source in tied.items():
        if target in state and source in state and state[target].data_ptr() == state[source].data_ptr():
            del state[target]
    limit = _parse_size(max_shard_size)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.detach().contiguous().cpu()
        size += nbytes
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    for stale in list(folder.glob("model*.safetensors")) + list(folder.glob("model.safetensors.index.json")):
        if stale.name not in names:
            stale.unlink()
    written = []
    for name, shard in zip(names, shards):
        _atomic_write(folder / name, lambda tmp, shard=shard: save_file(shard, str(tmp), metadata={"format": "pt"}))
        written.append(folder / name)
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": {k: n for n, s in zip(names, shards) for k in s}}
        _atomic_write(folder / "model.safetensors.index.json",
                      lambda tmp: tmp.write_text(json.dumps(index, indent=2, sort_keys=True)))
    config = model.config
    config.architectures = [type(model).__name__]
    _atomic_write(folder / "config.json", lambda tmp: tmp.write_text(config.to_json_string()))
    return written


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ------------------------------------------------------------------------------ assembling
def mllm_hub_key_to_v5(key: str) -> str:
    """A Qwen2.5-VL / Qwen3-VL hub weight name → the v5 in-memory name inside the backbone.

    Hub Qwen2.5-VL files use ``model.layers.*`` / ``visual.*``; v5 keeps the LLM under
    ``model.language_model`` and the ViT under ``model.visual``. Names already in v5 form pass.
    """
    if key.startswith(("model.language_model.", "model.visual.", "lm_head.")):
        return key
    if key.startswith("model."):
        return "model.language_model." + key[len("model."):]
    if key.startswith("visual."):
        return "model." + key
    return key


class _RenamedSource:
    """View of a reader under new names (``mapping``: new name → old name)."""

    def __init__(self, reader: Any, mapping: Mapping[str, str]):
        self.reader, self.mapping = reader, dict(mapping)

    def keys(self) -> list[str]:
        return list(self.mapping)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.reader.shape(self.mapping[key])

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.reader.read(self.mapping[key], dtype)


# Public SAM2 checkpoint file stems → their yaml stems.
_PT_NAMES = {
    f"{gen}_hiera_{size}": f"{gen}_hiera_{short}"
    for gen in ("sam2", "sam2.1")
    for size, short in (("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("large", "l"))
}


def assemble_citrus_v(
    mllm_dir: str | Path,
    sam2_path: str | Path,
    *,
    tokenizer: Any = None,
    sam2_variant: str | Mapping[str, Any] | None = None,
    dtype: Any = "auto",
    image_min_pixels: int | None = None,
    image_max_pixels: int | None = None,
    seed: int = 0,
):
    """Build a new Citrus-V from a Qwen2.5-VL / Qwen3-VL folder and a SAM2 checkpoint.

    The projector is initialised N(0, 0.02) (seeded); ``[SEG]``, ``<bbox>``, ``</bbox>`` are added
    to the tokenizer and the embeddings grow only if the vocabulary has no room for them.

    Args:
        mllm_dir: a transformers Qwen2.5-VL / Qwen3-VL checkpoint folder (hub layout).
        sam2_path: an original SAM2 ``.pt`` or a transformers SAM2 folder (``config.json`` + safetensors).
        tokenizer: the tokenizer to extend; loaded from ``mllm_dir`` when omitted.
        sam2_variant: architecture of an original ``.pt``: a public yaml name (``"sam2.1_hiera_t"``)
            or a ``model:`` node dict. By default the file name decides (``sam2_hiera_large.pt`` →
            ``sam2_hiera_l``); files named otherwise (MedSAM2, fine-tunes) need it.

    Returns:
        ``(model, tokenizer)``.
    """
    from transformers import AutoConfig, AutoTokenizer, Sam2Config

    from ..processing.tokens import add_citrus_tokens, citrus_token_ids
    from .configuration_citrus_v import CitrusVConfig
    from .modeling_citrus_v import CitrusVForConditionalGeneration
    from .sam2_conversion import sam2_config_from_original, sam2_config_from_variant

    mllm_dir, sam2_path = Path(mllm_dir), Path(sam2_path)
    if not (mllm_dir / "config.json").is_file():
        raise FileNotFoundError(f"{mllm_dir} has no config.json (expected a Qwen2.5-VL / Qwen3-VL folder)")
    mllm_config = AutoConfig.from_pretrained(mllm_dir)
    mllm_reader = SafetensorsFolder(mllm_dir)
    mllm_names = {"mllm." + mllm_hub_key_to_v5(k): k for k in mllm_reader.keys()}
    plan: dict[str, _Source] = {k: _Source(mllm_reader, (v,)) for k, v in mllm_names.items()}

    if sam2_path.is_dir():
        sam2_config = Sam2Config.from_pretrained(sam2_path)
        sam_reader = SafetensorsFolder(sam2_path)
        video = re.compile(r"^(memory_|mask_downsample|object_pointer_proj|temporal_positional_encoding_projection_layer|"
                           r"no_memory_positional_encoding|no_object_pointer|occlusion_spatial_embedding_parameter)")
        for key in sam_reader.keys():
            if not video.match(key):
                plan[SAM2_PREFIX + key] = _Source(sam_reader, (key,))
    elif sam2_path.is_file():
        if isinstance(sam2_variant, Mapping):
            sam2_config = sam2_config_from_original(sam2_variant)
        else:
            name = sam2_variant or _PT_NAMES.get(sam2_path.stem, sam2_path.stem)
            try:
                sam2_config = sam2_config_from_variant(name)
            except ValueError as err:
                raise ValueError(f"{err}. Name the architecture of {sam2_path.name} with sam2_variant "
                                 "(e.g. 'sam2.1_hiera_t' for MedSAM2)") from None
        torch_reader = _TorchStateDictSource(sam2_path)
        sam_plan = plan_original_sam2_keys(torch_reader.keys(), dst_prefix=SAM2_PREFIX)
        if sam_plan.unexpected:
            raise CheckpointError(f"{sam2_path}: weights with unknown SAM2 names, e.g. {sam_plan.unexpected[:5]}")
        plan.update({t: _Source(torch_reader, s) for t, s in sam_plan.sources.items()})
    else:
        raise FileNotFoundError(f"no SAM2 checkpoint at {sam2_path}")

    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(mllm_dir)
    add_citrus_tokens(tokenizer)
    ids = citrus_token_ids(tokenizer)
    config = CitrusVConfig(
        mllm_config=mllm_config, sam2_config=sam2_config, seg_token_id=ids.seg, bbox_start_token_id=ids.bbox_start,
        bbox_end_token_id=ids.bbox_end, image_min_pixels=image_min_pixels, image_max_pixels=image_max_pixels,
    )
    config._attn_implementation = "sdpa"
    target_dtype = _resolve_dtype(dtype, getattr(mllm_config, "dtype", None), mllm_reader)
    with parameters_on_meta(target_dtype):
        model = CitrusVForConditionalGeneration(config)
    # The projector is new: give it real, seeded weights; everything else comes from the files.
    generator = torch.Generator().manual_seed(seed)
    projector = set()
    for name, param in list(model.seg_projector.named_parameters()):
        value = (torch.randn(param.shape, generator=generator) * 0.02 if name.endswith("weight")
                 else torch.zeros(param.shape)).to(target_dtype)
        _set_tensor(model, "seg_projector." + name, value)
        projector.add("seg_projector." + name)
    loaded, _ = _fill_model(model, plan, target_dtype, f"{mllm_dir} + {sam2_path}", already_set=projector)
    needed = len(tokenizer)
    vocab = model.mllm.get_input_embeddings().weight.shape[0]
    if needed > vocab:
        logger.info("growing the embeddings from %d to %d rows for the Citrus-V tokens", vocab, needed)
        model.mllm.resize_token_embeddings(needed)
    model.eval()
    logger.info("assembled Citrus-V from %s and %s (%d tensors)", mllm_dir, sam2_path, loaded)
    return model, tokenizer
