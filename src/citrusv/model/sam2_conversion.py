"""Original SAM2 (``facebookresearch/sam2``) ↔ transformers ``Sam2Model``: configs and weight names.

The released Citrus-V checkpoint stores SAM2 under ``grounding_encoder.sam2_model.`` with the
original package's names and describes the architecture only through the name of a Hydra yaml
file. This module turns both into what transformers' ``Sam2Model`` understands, and back:

* ``SAM2_VARIANTS`` and ``sam2_config_from_original``: the ``model:`` node of an original SAM2 yaml
  (as a dict, ``_target_`` keys optional) → ``Sam2Config``. Only the single-image path is
  represented; options transformers' ``Sam2Model`` cannot express are rejected by name.
* ``original_to_hf_key`` / ``hf_to_original_key``: one rename table used in both directions.
  Two names are not one-to-one and are handled as groups: the four
  ``sam_prompt_encoder.point_embeddings.{0..3}.weight`` tensors ([1, C] each) are concatenated into
  ``prompt_encoder.point_embed.weight`` ([4, C]), and the prompt encoder's Gaussian matrix feeds
  both ``prompt_encoder.shared_embedding`` and ``shared_image_embedding`` (the original computes
  the image positional encoding from the same matrix).
* ``VIDEO_ONLY_PREFIXES``: memory attention / memory encoder / object-pointer weights that the
  released checkpoint carries but single-image segmentation never uses. They are dropped and
  counted, never reported as unexpected.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PUBLIC_YAML_FLAGS",
    "SAM2_VARIANTS",
    "VIDEO_ONLY_PREFIXES",
    "Sam2KeyPlan",
    "hf_to_original_key",
    "is_video_only_key",
    "original_model_node_from_sam2_config",
    "original_to_hf_key",
    "plan_original_sam2_keys",
    "sam2_config_from_original",
    "sam2_config_from_variant",
    "sam2_state_dict_to_original",
    "variant_name_from_cfg_path",
]

# --------------------------------------------------------------------------------------------
# Architectures of the public SAM 2.0 / 2.1 yaml files (image path only).
# Values not listed take the defaults of the original ``Hiera`` / ``SAM2Base`` constructors.
# --------------------------------------------------------------------------------------------

_HIERA_DEFAULTS: dict[str, Any] = {
    "embed_dim": 96,
    "num_heads": 1,
    "q_pool": 3,
    "q_stride": [2, 2],
    "stages": [2, 3, 16, 3],
    "dim_mul": 2.0,
    "head_mul": 2.0,
    "window_pos_embed_bkg_spatial_size": [14, 14],
    "window_spec": [8, 4, 14, 7],
    "global_att_blocks": [12, 16, 20],
}

# SAM2Base keyword defaults that matter for the single-image path.
_SAM2BASE_DEFAULTS: dict[str, Any] = {
    "image_size": 512,
    "backbone_stride": 16,
    "directly_add_no_mem_embed": False,
    "use_high_res_features_in_sam": False,
    "multimask_output_in_sam": False,
    "iou_prediction_use_sigmoid": False,
    "pred_obj_scores": False,
    "pred_obj_scores_mlp": False,
    "sam_mask_decoder_extra_args": None,
}

# Flags every public yaml sets the same way and that transformers' Sam2Model hard-codes.
PUBLIC_YAML_FLAGS: dict[str, Any] = {
    "image_size": 1024,
    "directly_add_no_mem_embed": True,
    "use_high_res_features_in_sam": True,
    "multimask_output_in_sam": True,
    "iou_prediction_use_sigmoid": True,
    "pred_obj_scores": True,
    "pred_obj_scores_mlp": True,
}


def _public_variant(trunk: dict[str, Any], channels: list[int]) -> dict[str, Any]:
    return {
        "image_encoder": {
            "scalp": 1,
            "trunk": trunk,
            "neck": {
                "d_model": 256,
                "backbone_channel_list": channels,
                "fpn_top_down_levels": [2, 3],
                "fpn_interp_model": "nearest",
                "position_encoding": {"num_pos_feats": 256, "normalize": True, "temperature": 10000},
            },
        },
        **PUBLIC_YAML_FLAGS,
    }


_T = {"embed_dim": 96, "num_heads": 1, "stages": [1, 2, 7, 2], "global_att_blocks": [5, 7, 9],
      "window_pos_embed_bkg_spatial_size": [7, 7]}
_S = {"embed_dim": 96, "num_heads": 1, "stages": [1, 2, 11, 2], "global_att_blocks": [7, 10, 13],
      "window_pos_embed_bkg_spatial_size": [7, 7]}
_BP = {"embed_dim": 112, "num_heads": 2}
_L = {"embed_dim": 144, "num_heads": 2, "stages": [2, 6, 36, 4], "global_att_blocks": [23, 33, 43],
      "window_pos_embed_bkg_spatial_size": [7, 7], "window_spec": [8, 4, 16, 8]}

#: yaml file stem → ``model:`` node (image path). SAM 2.0 and 2.1 differ only in video-memory
#: options, so each size has the same image-path description in both generations.
SAM2_VARIANTS: dict[str, dict[str, Any]] = {}
for _stem, _trunk, _channels in (
    ("hiera_t", _T, [768, 384, 192, 96]),
    ("hiera_s", _S, [768, 384, 192, 96]),
    ("hiera_b+", _BP, [896, 448, 224, 112]),
    ("hiera_l", _L, [1152, 576, 288, 144]),
):
    SAM2_VARIANTS[f"sam2_{_stem}"] = _public_variant(_trunk, _channels)
    SAM2_VARIANTS[f"sam2.1_{_stem}"] = _public_variant(_trunk, _channels)


def variant_name_from_cfg_path(cfg_path: str) -> str:
    """``"/mnt/.../sam2_hiera_l.yaml"`` → ``"sam2_hiera_l"``: only the file name counts.

    Raises:
        ValueError: the file name is not one of the public SAM2 yaml files.
    """
    stem = re.split(r"[\\/]", str(cfg_path))[-1]
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    if stem not in SAM2_VARIANTS:
        raise ValueError(
            f"unknown SAM2 config file {cfg_path!r}: expected one of "
            f"{', '.join(k + '.yaml' for k in SAM2_VARIANTS)}; for another architecture put the yaml's "
            "`model:` node into config.json as `sam2_model_config`"
        )
    return stem


def sam2_config_from_variant(name: str):
    """``Sam2Config`` of a public SAM2 yaml (``"sam2_hiera_l"``, ``"sam2.1_hiera_t.yaml"``, a path)."""
    return sam2_config_from_original(SAM2_VARIANTS[variant_name_from_cfg_path(name)])


def _strip_targets(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _strip_targets(v) for k, v in node.items() if k != "_target_"}
    if isinstance(node, (list, tuple)):
        return [_strip_targets(v) for v in node]
    return node


def sam2_config_from_original(model_node: Mapping[str, Any]):
    """Map the ``model:`` node of an original SAM2 yaml to a transformers ``Sam2Config``.

    Args:
        model_node: dict with ``image_encoder.trunk``, ``image_encoder.neck`` and the ``SAM2Base``
            keyword arguments (``image_size``, ``use_high_res_features_in_sam``, ...). ``_target_``
            keys are ignored; missing values take the original constructors' defaults.

    Raises:
        ValueError: a field is missing or malformed, or the description uses an option that
            transformers' ``Sam2Model`` cannot represent (the message names the option).
    """
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    node = _strip_targets(dict(model_node))
    if "image_encoder" not in node or "trunk" not in node["image_encoder"] or "neck" not in node["image_encoder"]:
        raise ValueError("SAM2 description needs image_encoder.trunk and image_encoder.neck")
    trunk = {**_HIERA_DEFAULTS, **node["image_encoder"]["trunk"]}
    neck = dict(node["image_encoder"]["neck"])
    base = {**_SAM2BASE_DEFAULTS, **{k: v for k, v in node.items() if k != "image_encoder"}}

    # Options the transformers implementation hard-codes one way.
    required = {
        "directly_add_no_mem_embed": True,
        "use_high_res_features_in_sam": True,
        "pred_obj_scores": True,
        "pred_obj_scores_mlp": True,
        "iou_prediction_use_sigmoid": True,
    }
    for flag, value in required.items():
        if bool(base[flag]) != value:
            raise ValueError(
                f"SAM2 description sets {flag}={base[flag]!r}; transformers' Sam2Model only implements "
                f"{flag}={value}"
            )
    scalp = node["image_encoder"].get("scalp", 0)
    if scalp != 1:
        raise ValueError(f"SAM2 description sets image_encoder.scalp={scalp}; only scalp=1 (3 feature levels) is supported")
    if neck.get("fpn_interp_model", "bilinear") != "nearest":
        raise ValueError("SAM2 description sets neck.fpn_interp_model other than 'nearest', which Sam2Model does not implement")
    if neck.get("fuse_type", "sum") != "sum":
        raise ValueError("SAM2 description sets neck.fuse_type other than 'sum', which Sam2Model does not implement")
    for key in ("d_model", "backbone_channel_list"):
        if key not in neck:
            raise ValueError(f"SAM2 description lacks image_encoder.neck.{key}")
    d_model = int(neck["d_model"])
    pos_feats = neck.get("position_encoding", {}).get("num_pos_feats", d_model)
    if pos_feats != d_model:
        raise ValueError(f"neck.position_encoding.num_pos_feats={pos_feats} must equal neck.d_model={d_model}")
    q_stride = list(trunk["q_stride"])
    if q_stride != [2, 2]:
        raise ValueError(f"trunk.q_stride={q_stride} is not supported (Sam2Model assumes [2, 2])")

    stages = [int(s) for s in trunk["stages"]]
    embed_dim, num_heads = int(trunk["embed_dim"]), int(trunk["num_heads"])
    dims, heads = [embed_dim], [num_heads]
    for _ in stages[1:]:
        dims.append(int(dims[-1] * trunk["dim_mul"]))
        heads.append(int(heads[-1] * trunk["head_mul"]))
    channels = [int(c) for c in neck["backbone_channel_list"]]
    if channels != dims[::-1]:
        raise ValueError(f"neck.backbone_channel_list={channels} does not match the trunk's stage widths {dims[::-1]}")

    image_size = int(base["image_size"])
    stride = int(base["backbone_stride"])
    if image_size % stride or stride != 16:
        raise ValueError(f"image_size={image_size} with backbone_stride={stride} is not supported (stride must be 16)")
    extra = base.get("sam_mask_decoder_extra_args") or {}

    backbone = Sam2HieraDetConfig(
        hidden_size=embed_dim,
        num_attention_heads=num_heads,
        image_size=[image_size, image_size],
        query_stride=q_stride,
        num_query_pool_stages=int(trunk["q_pool"]),
        window_positional_embedding_background_size=list(trunk["window_pos_embed_bkg_spatial_size"]),
        blocks_per_stage=stages,
        embed_dim_per_stage=dims,
        num_attention_heads_per_stage=heads,
        window_size_per_stage=list(trunk["window_spec"]),
        global_attention_blocks=list(trunk["global_att_blocks"]),
    )
    side = image_size // 4
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=channels,
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
        fpn_hidden_size=d_model,
        fpn_top_down_levels=list(neck.get("fpn_top_down_levels", [2, 3])),
    )
    prompt = Sam2PromptEncoderConfig(hidden_size=d_model, image_size=image_size, patch_size=stride, mask_input_channels=16)
    # SAM2Base._build_sam_heads hard-codes these decoder sizes.
    decoder = Sam2MaskDecoderConfig(
        hidden_size=d_model,
        mlp_dim=2048,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        dynamic_multimask_via_stability=bool(extra.get("dynamic_multimask_via_stability", False)),
        dynamic_multimask_stability_delta=float(extra.get("dynamic_multimask_stability_delta", 0.05)),
        dynamic_multimask_stability_thresh=float(extra.get("dynamic_multimask_stability_thresh", 0.98)),
    )
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def original_model_node_from_sam2_config(config) -> dict[str, Any]:
    """Inverse of ``sam2_config_from_original``: the ``model:`` node describing ``config``.

    Used to write released-layout checkpoints (``sam2_model_config``) and to build the original
    package's ``SAM2Base`` for parity tests.

    Raises:
        ValueError: ``config`` has a decoder that the original ``SAM2Base`` cannot build.
    """
    vision = config.vision_config
    backbone = vision.backbone_config
    decoder = config.mask_decoder_config
    fixed = {"mlp_dim": 2048, "num_hidden_layers": 2, "num_attention_heads": 8, "iou_head_depth": 3,
             "iou_head_hidden_dim": 256, "num_multimask_outputs": 3}
    for key, value in fixed.items():
        if getattr(decoder, key) != value:
            raise ValueError(f"mask_decoder_config.{key}={getattr(decoder, key)} cannot be expressed as an original SAM2 (fixed at {value})")
    dims = list(backbone.embed_dim_per_stage)
    heads = list(backbone.num_attention_heads_per_stage)
    dim_mul = dims[1] / dims[0] if len(dims) > 1 else 2.0
    head_mul = heads[1] / heads[0] if len(heads) > 1 else 2.0
    image_size = int(backbone.image_size[0])
    node: dict[str, Any] = {
        "image_encoder": {
            "scalp": 1,
            "trunk": {
                "embed_dim": int(backbone.hidden_size),
                "num_heads": int(backbone.num_attention_heads),
                "q_pool": int(backbone.num_query_pool_stages),
                "q_stride": list(backbone.query_stride),
                "stages": list(backbone.blocks_per_stage),
                "dim_mul": dim_mul,
                "head_mul": head_mul,
                "window_pos_embed_bkg_spatial_size": list(backbone.window_positional_embedding_background_size),
                "window_spec": list(backbone.window_size_per_stage),
                "global_att_blocks": list(backbone.global_attention_blocks),
            },
            "neck": {
                "d_model": int(vision.fpn_hidden_size),
                "backbone_channel_list": list(vision.backbone_channel_list),
                "fpn_top_down_levels": list(vision.fpn_top_down_levels),
                "fpn_interp_model": "nearest",
                "position_encoding": {"num_pos_feats": int(vision.fpn_hidden_size), "normalize": True, "temperature": 10000},
            },
        },
        **copy.deepcopy(PUBLIC_YAML_FLAGS),
        "image_size": image_size,
        "backbone_stride": int(config.prompt_encoder_config.patch_size),
    }
    if decoder.dynamic_multimask_via_stability:
        node["sam_mask_decoder_extra_args"] = {
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": decoder.dynamic_multimask_stability_delta,
            "dynamic_multimask_stability_thresh": decoder.dynamic_multimask_stability_thresh,
        }
    return node


# --------------------------------------------------------------------------------------------
# Weight names.
# --------------------------------------------------------------------------------------------

#: Weights of the video path (memory bank, object pointers): present in every original SAM2
#: checkpoint, unused for single images.
VIDEO_ONLY_PREFIXES: tuple[str, ...] = (
    "memory_attention.",
    "memory_encoder.",
    "mask_downsample.",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
)
_VIDEO_ONLY_KEYS = frozenset({"maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr", "no_obj_embed_spatial"})

_HEADS = r"output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head"
_ATTN = r"self_attn|cross_attn_token_to_image|cross_attn_image_to_token"

# (original pattern, transformers pattern). ``{name}`` placeholders match the same text on both
# sides; a pattern ending in "." is a prefix (the rest of the key is kept), otherwise exact.
_RENAMES: list[tuple[str, str]] = [
    ("image_encoder.trunk.patch_embed.proj.", "vision_encoder.backbone.patch_embed.projection."),
    ("image_encoder.trunk.pos_embed", "vision_encoder.backbone.pos_embed"),
    ("image_encoder.trunk.pos_embed_window", "vision_encoder.backbone.pos_embed_window"),
    ("image_encoder.trunk.blocks.{i}.norm{n}.", "vision_encoder.backbone.blocks.{i}.layer_norm{n}."),
    ("image_encoder.trunk.blocks.{i}.attn.{p}.", "vision_encoder.backbone.blocks.{i}.attn.{p}."),
    ("image_encoder.trunk.blocks.{i}.mlp.layers.0.", "vision_encoder.backbone.blocks.{i}.mlp.proj_in."),
    ("image_encoder.trunk.blocks.{i}.mlp.layers.1.", "vision_encoder.backbone.blocks.{i}.mlp.proj_out."),
    ("image_encoder.trunk.blocks.{i}.proj.", "vision_encoder.backbone.blocks.{i}.proj."),
    ("image_encoder.neck.convs.{i}.conv.", "vision_encoder.neck.convs.{i}."),
    ("sam_prompt_encoder.not_a_point_embed.", "prompt_encoder.not_a_point_embed."),
    ("sam_prompt_encoder.no_mask_embed.", "prompt_encoder.no_mask_embed."),
    ("sam_prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("sam_prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("sam_prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("sam_prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("sam_prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("sam_mask_decoder.transformer.layers.{i}.{a}.{q}_proj.", "mask_decoder.transformer.layers.{i}.{a}.{q}_proj."),
    ("sam_mask_decoder.transformer.layers.{i}.{a}.out_proj.", "mask_decoder.transformer.layers.{i}.{a}.o_proj."),
    ("sam_mask_decoder.transformer.layers.{i}.norm{m}.", "mask_decoder.transformer.layers.{i}.layer_norm{m}."),
    ("sam_mask_decoder.transformer.layers.{i}.mlp.layers.0.", "mask_decoder.transformer.layers.{i}.mlp.proj_in."),
    ("sam_mask_decoder.transformer.layers.{i}.mlp.layers.1.", "mask_decoder.transformer.layers.{i}.mlp.proj_out."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.{q}_proj.", "mask_decoder.transformer.final_attn_token_to_image.{q}_proj."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.out_proj.", "mask_decoder.transformer.final_attn_token_to_image.o_proj."),
    ("sam_mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("sam_mask_decoder.{t}.", "mask_decoder.{t}."),
    ("sam_mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("sam_mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("sam_mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("sam_mask_decoder.{h}.layers.0.", "mask_decoder.{h}.proj_in."),
    ("sam_mask_decoder.{h}.layers.1.", "mask_decoder.{h}.layers.0."),
    ("sam_mask_decoder.{h}.layers.2.", "mask_decoder.{h}.proj_out."),
    ("no_mem_embed", "no_memory_embedding"),
]
_PLACEHOLDERS = {
    "i": r"\d+",
    "n": r"[12]",
    "m": r"[1-4]",
    "p": r"qkv|proj",
    "a": _ATTN,
    "q": r"[qkv]",
    "t": r"iou_token|mask_tokens|obj_score_token|conv_s0|conv_s1",
    "h": _HEADS,
}

# Grouped names (not one-to-one).
_POINT_EMBED_ORIG = "sam_prompt_encoder.point_embeddings.{}.weight"
_POINT_EMBED_HF = "prompt_encoder.point_embed.weight"
_GAUSSIAN_ORIG = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
_GAUSSIAN_HF = ("prompt_encoder.shared_embedding.positional_embedding", "shared_image_embedding.positional_embedding")


def _compile(pattern: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{\w\})", pattern):
        if re.fullmatch(r"\{\w\}", part):
            name = part[1:-1]
            regex += f"(?P<{name}>{_PLACEHOLDERS[name]})"
        else:
            regex += re.escape(part)
    return re.compile("^" + regex + ("" if pattern.endswith(".") else "$"))


_FORWARD = [(_compile(src), dst) for src, dst in _RENAMES]
_BACKWARD = [(_compile(dst), src) for src, dst in _RENAMES]


def _apply(rules: list[tuple[re.Pattern[str], str]], key: str) -> str | None:
    for regex, template in rules:
        match = regex.match(key)
        if match:
            head = template
            for name, value in match.groupdict().items():
                head = head.replace("{" + name + "}", value)
            return head + key[match.end():]
    return None


def is_video_only_key(original_key: str) -> bool:
    """True for original SAM2 weights used only by the video (memory) path."""
    return original_key in _VIDEO_ONLY_KEYS or original_key.startswith(VIDEO_ONLY_PREFIXES)


def original_to_hf_key(original_key: str) -> str | None:
    """Rename one original SAM2 key to its ``Sam2Model`` name (one-to-one names only).

    Returns ``None`` for keys that are grouped (point embeddings, Gaussian matrix), video-only or
    unknown; ``plan_original_sam2_keys`` tells these apart.
    """
    return _apply(_FORWARD, original_key)


def hf_to_original_key(hf_key: str) -> str | None:
    """Inverse of ``original_to_hf_key``."""
    return _apply(_BACKWARD, hf_key)


@dataclass
class Sam2KeyPlan:
    """How the keys of an original SAM2 state dict become ``Sam2Model`` keys.

    Attributes:
        sources: target key → ordered source keys; one source means copy, several mean
            concatenation along dim 0 (the point embeddings).
        dropped: video-only source keys, intentionally not loaded.
        unexpected: source keys that match nothing (an error for the caller to report).
    """

    sources: dict[str, tuple[str, ...]]
    dropped: list[str]
    unexpected: list[str]


def plan_original_sam2_keys(original_keys: Iterable[str], src_prefix: str = "", dst_prefix: str = "") -> Sam2KeyPlan:
    """Plan the conversion of original SAM2 keys (each starting with ``src_prefix``).

    Args:
        original_keys: keys of the checkpoint, e.g. ``grounding_encoder.sam2_model.no_mem_embed``.
        src_prefix: prefix in front of the original names (``"grounding_encoder.sam2_model."``).
        dst_prefix: prefix in front of the ``Sam2Model`` names in the target model (``"sam2."``).
    """
    sources: dict[str, tuple[str, ...]] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    point_parts: dict[int, str] = {}
    for full in original_keys:
        key = full[len(src_prefix):] if src_prefix and full.startswith(src_prefix) else full
        point = re.fullmatch(r"sam_prompt_encoder\.point_embeddings\.(\d+)\.weight", key)
        if point:
            point_parts[int(point.group(1))] = full
        elif key == _GAUSSIAN_ORIG:
            for target in _GAUSSIAN_HF:
                sources[dst_prefix + target] = (full,)
        elif is_video_only_key(key):
            dropped.append(full)
        else:
            target = original_to_hf_key(key)
            if target is None:
                unexpected.append(full)
            else:
                sources[dst_prefix + target] = (full,)
    if point_parts:
        if sorted(point_parts) != list(range(len(point_parts))):
            # A gap means a missing tensor: let the caller report the target as missing.
            unexpected.extend(point_parts[i] for i in sorted(point_parts))
        else:
            sources[dst_prefix + _POINT_EMBED_HF] = tuple(point_parts[i] for i in sorted(point_parts))
    return Sam2KeyPlan(sources=sources, dropped=dropped, unexpected=unexpected)


def sam2_state_dict_to_original(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``Sam2Model`` state dict → original SAM2 names (image path only; no video weights).

    Raises:
        ValueError: a key has no original name.
    """
    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        if key == _POINT_EMBED_HF:
            for i in range(tensor.shape[0]):
                out[_POINT_EMBED_ORIG.format(i)] = tensor[i : i + 1].clone()
        elif key == _GAUSSIAN_HF[0]:
            out[_GAUSSIAN_ORIG] = tensor
        elif key == _GAUSSIAN_HF[1]:
            continue  # a copy of the prompt encoder's matrix in the original layout
        else:
            original = hf_to_original_key(key)
            if original is None:
                raise ValueError(f"Sam2Model key {key!r} has no original SAM2 name")
            out[original] = tensor
    return out
