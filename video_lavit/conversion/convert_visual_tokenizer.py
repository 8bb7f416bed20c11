"""Convert the released Video-LaVIT visual tokenizer weights into a `VideoLavitVisualTokenizer` checkpoint.

Sources (folder layout of `rain1011/Video-LaVIT-v1`):

* `visual_tokenizer/eva_vitg_psz14.bin`: EVA-CLIP ViT-g/14, keys without the `encoder.` prefix the original
  tokenizer module gives them (`cls_token`, `blocks.0.attn.qkv.weight`, ..., incl. the unused `norm`/`head`);
* `visual_tokenizer/tokenizer_encoder.bin`: `token_predictor.*`, `causal_encoder.*`, `quantize.*`,
  `encode_task_layer.*` (optionally `vit_proj.*`);
* `vit_proj.*` (understanding projection): from `language_model_sft/` (prefix `model.visual_tokenizer.`) or
  from `language_model/visual_weight.bin`;
* `language_model_sft/` also holds the whole tokenizer under `model.visual_tokenizer.` (merger trained with
  the LLM); `--merger-source language_model_sft` takes the whole tokenizer from there.

Every source key is renamed by an explicit rule; a key no rule knows, a key given twice, or one of our
parameters left unfilled raises `ValueError` listing them. Renaming never touches tensor data, so it works
on meta tensors (used by the released-key checks).

Usage::

    python -m video_lavit.conversion.convert_visual_tokenizer CHECKPOINT_DIR OUTPUT_DIR [--dtype bfloat16]
        [--merger-source tokenizer_encoder|language_model_sft] [--config CONFIG_JSON]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import torch

from ._utils import check_state_dict, load_weights_file, rename_by_rules, rename_keys

logger = logging.getLogger(__name__)

SFT_PREFIX = "model.visual_tokenizer."

# (original-name regex, our name template); names are those of the original DynamicVisualTokenizer.
_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(p), t)
    for p, t in [
        (r"^encoder\.cls_token$", r"vision_model.embeddings.cls_token"),
        (r"^encoder\.pos_embed$", r"vision_model.embeddings.position_embedding"),
        (r"^encoder\.patch_embed\.proj\.(weight|bias)$", r"vision_model.embeddings.patch_embedding.\1"),
        (r"^encoder\.blocks\.(\d+)\.norm1\.(weight|bias)$", r"vision_model.layers.\1.layer_norm1.\2"),
        (r"^encoder\.blocks\.(\d+)\.norm2\.(weight|bias)$", r"vision_model.layers.\1.layer_norm2.\2"),
        (r"^encoder\.blocks\.(\d+)\.attn\.(q_bias|v_bias)$", r"vision_model.layers.\1.self_attn.\2"),
        (r"^encoder\.blocks\.(\d+)\.attn\.qkv\.weight$", r"vision_model.layers.\1.self_attn.qkv.weight"),
        (r"^encoder\.blocks\.(\d+)\.attn\.proj\.(weight|bias)$", r"vision_model.layers.\1.self_attn.proj.\2"),
        (r"^encoder\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$", r"vision_model.layers.\1.mlp.\2.\3"),
        (r"^encoder\.norm\.(weight|bias)$", r"vision_model.post_layernorm.\1"),
        (r"^encoder\.head\.(weight|bias)$", r"vision_model.head.\1"),
        (r"^token_predictor\.in_conv\.0\.(weight|bias)$", r"token_selector.in_norm.\1"),
        (r"^token_predictor\.in_conv\.1\.(weight|bias)$", r"token_selector.in_proj.\1"),
        (r"^token_predictor\.out_conv\.0\.(weight|bias)$", r"token_selector.fc1.\1"),
        (r"^token_predictor\.out_conv\.2\.(weight|bias)$", r"token_selector.fc2.\1"),
        (r"^token_predictor\.out_conv\.4\.(weight|bias)$", r"token_selector.fc3.\1"),
        (r"^causal_encoder\.ln_vision\.(weight|bias)$", r"token_merger.vision_layer_norm.\1"),
        (r"^causal_encoder\.norm\.(weight|bias)$", r"token_merger.norm.\1"),
        (r"^causal_encoder\.blocks\.(\d+)\.norm0\.(weight|bias)$", r"token_merger.layers.\1.self_attn_layer_norm.\2"),
        (r"^causal_encoder\.blocks\.(\d+)\.norm1\.(weight|bias)$", r"token_merger.layers.\1.cross_attn_layer_norm.\2"),
        (r"^causal_encoder\.blocks\.(\d+)\.norm2\.(weight|bias)$", r"token_merger.layers.\1.final_layer_norm.\2"),
        (
            r"^causal_encoder\.blocks\.(\d+)\.token_causal_attn\.(qkv|proj)\.(weight|bias)$",
            r"token_merger.layers.\1.self_attn.\2.\3",
        ),
        (
            r"^causal_encoder\.blocks\.(\d+)\.token_cross_attn\.query\.(weight|bias)$",
            r"token_merger.layers.\1.cross_attn.q_proj.\2",
        ),
        (
            r"^causal_encoder\.blocks\.(\d+)\.token_cross_attn\.key\.(weight|bias)$",
            r"token_merger.layers.\1.cross_attn.k_proj.\2",
        ),
        (
            r"^causal_encoder\.blocks\.(\d+)\.token_cross_attn\.value\.(weight|bias)$",
            r"token_merger.layers.\1.cross_attn.v_proj.\2",
        ),
        (
            r"^causal_encoder\.blocks\.(\d+)\.token_cross_attn\.proj\.(weight|bias)$",
            r"token_merger.layers.\1.cross_attn.out_proj.\2",
        ),
        (r"^causal_encoder\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$", r"token_merger.layers.\1.mlp.\2.\3"),
        (r"^quantize\.embedding\.weight$", r"quantizer.codebook.weight"),
        (r"^encode_task_layer\.0\.(weight|bias)$", r"code_projection.fc1.\1"),
        (r"^encode_task_layer\.2\.(weight|bias)$", r"code_projection.fc2.\1"),
        (r"^vit_proj\.(weight|bias)$", r"feature_projection.\1"),
    ]
]

# Which of our parameters each released file fills (prefixes of our names).
EVA_PREFIXES = ("vision_model.",)
TOKENIZER_ENCODER_PREFIXES = ("token_selector.", "token_merger.", "code_projection.", "quantizer.")
VIT_PROJ_PREFIXES = ("feature_projection.",)


def rename_key(original: str) -> str | None:
    """Our parameter name for an original `DynamicVisualTokenizer` key, or `None` when no rule knows it."""
    return rename_by_rules(original, _RULES)


def convert_state_dict(state_dict: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Rename an original `DynamicVisualTokenizer` state dict (any subset of its keys) to ours.

    Raises `ValueError` listing every key no rule maps.
    """
    converted, unknown = rename_keys(state_dict, rename_key)
    if unknown:
        raise ValueError(f"{source}: {len(unknown)} key(s) have no mapping to VideoLavitVisualTokenizer: {unknown}")
    return converted


def convert_eva_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`eva_vitg_psz14.bin` (keys without the `encoder.` prefix) -> our `vision_model.*` keys."""
    converted = convert_state_dict({f"encoder.{k}": v for k, v in state_dict.items()}, "eva_vitg_psz14")
    _require_prefixes(converted, EVA_PREFIXES, "eva_vitg_psz14")
    return converted


def convert_tokenizer_encoder_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`tokenizer_encoder.bin` -> selector, merger, code projection, codebook (and `vit_proj` if present)."""
    converted = convert_state_dict(state_dict, "tokenizer_encoder")
    _require_prefixes(converted, TOKENIZER_ENCODER_PREFIXES + VIT_PROJ_PREFIXES, "tokenizer_encoder")
    return converted


def convert_vit_proj_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`vit_proj.*` (bare, or with the SFT prefix `model.visual_tokenizer.`) -> `feature_projection.*`."""
    stripped = {k[len(SFT_PREFIX) :] if k.startswith(SFT_PREFIX) else k: v for k, v in state_dict.items()}
    converted = convert_state_dict(stripped, "vit_proj")
    _require_prefixes(converted, VIT_PROJ_PREFIXES, "vit_proj")
    return converted


def split_sft_state_dict(
    state_dict: dict[str, torch.Tensor], prefix: str = SFT_PREFIX
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a `language_model_sft` state dict into (our visual tokenizer keys, all other keys unchanged)."""
    inside = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    rest = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    return convert_state_dict(inside, f"{prefix}*"), rest


def _require_prefixes(converted: dict, prefixes: tuple[str, ...], source: str) -> None:
    foreign = sorted(k for k in converted if not k.startswith(prefixes))
    if foreign:
        raise ValueError(f"{source}: key(s) that do not belong in this file: {foreign}")


def merge_parts(parts: list[tuple[str, dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """Merge converted parts; a key provided by two parts is an error naming both."""
    merged, origin, clashes = {}, {}, []
    for name, part in parts:
        for key, tensor in part.items():
            if key in merged:
                clashes.append(f"{key} ({origin[key]} and {name})")
            merged[key], origin[key] = tensor, name
    if clashes:
        raise ValueError(f"parameters provided by more than one source: {clashes}")
    return merged


def check_complete(converted: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """Every expected parameter present with its shape and nothing extra, else `ValueError` listing them."""
    check_state_dict(converted, expected, "converted visual tokenizer state dict")


# ------------------------------------------------------------------------------------------------ file I/O
def load_original(path: str | Path, keep=None) -> dict[str, torch.Tensor]:
    """A `.bin` file, or a folder of transformers `pytorch_model*.bin` shards, read without unpickling code.

    Files are memory-mapped where possible and only the keys passing `keep` (all when `None`) are kept, so the
    other tensors of a large file are never read.
    """
    path = Path(path)
    files = sorted(path.glob("pytorch_model*.bin")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no pytorch_model*.bin shards in {path}")
    state_dict = {}
    for file in files:
        part = load_weights_file(file)
        if "state_dict" in part and isinstance(part["state_dict"], dict):
            part = part["state_dict"]
        state_dict.update(part if keep is None else {k: v for k, v in part.items() if keep(k)})
    return state_dict


def load_sft_visual_tokenizer(sft_dir: str | Path, prefix: str = SFT_PREFIX) -> dict[str, torch.Tensor]:
    """Only the `prefix` tensors (default: the whole `model.visual_tokenizer.*`) of the SFT shards; the index tells
    which shards hold them. The shards are memory-mapped, so the LLM tensors beside them are never read."""
    sft_dir = Path(sft_dir)
    index = sft_dir / "pytorch_model.bin.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted({f for k, f in weight_map.items() if k.startswith(prefix)})
        files = [sft_dir / s for s in shards]
    else:
        files = sorted(sft_dir.glob("pytorch_model*.bin"))
    state_dict = {}
    for file in files:
        state_dict.update(load_weights_file(file, keep=lambda key: key.startswith(prefix)))
    if not state_dict:
        raise ValueError(f"no {prefix}* tensors found in {sft_dir}")
    return state_dict


def convert_checkpoint(
    checkpoint_dir: str | Path,
    merger_source: str = "tokenizer_encoder",
) -> dict[str, torch.Tensor]:
    """Assemble our full state dict from a released checkpoint folder.

    `merger_source="tokenizer_encoder"` (generation route of the original): EVA + `tokenizer_encoder.bin` +
    `vit_proj` from `language_model/visual_weight.bin` or, if absent, from `language_model_sft/`.
    `merger_source="language_model_sft"` (understanding route): the whole tokenizer from the SFT shards.
    """
    if merger_source not in ("tokenizer_encoder", "language_model_sft"):
        raise ValueError(f"merger_source must be 'tokenizer_encoder' or 'language_model_sft', got {merger_source!r}")
    root = Path(checkpoint_dir)
    if merger_source == "language_model_sft":
        # the SFT shards hold all 813 tokenizer tensors (EVA included), so nothing else is read
        sft, _ = split_sft_state_dict(load_sft_visual_tokenizer(root / "language_model_sft"))
        return sft
    encoder = convert_tokenizer_encoder_state_dict(load_original(root / "visual_tokenizer/tokenizer_encoder.bin"))
    parts = [
        ("eva_vitg_psz14", convert_eva_state_dict(load_original(root / "visual_tokenizer/eva_vitg_psz14.bin"))),
        ("tokenizer_encoder", encoder),
    ]
    if not any(k.startswith(VIT_PROJ_PREFIXES) for k in encoder):
        visual_weight = root / "language_model" / "visual_weight.bin"
        if visual_weight.is_file():
            # this LaVIT-era file may also carry a merger trained with the LLM; the generation route keeps the
            # tokenizer_encoder.bin merger (use merger_source="language_model_sft" for the LLM-trained one)
            vit = load_original(visual_weight, keep=lambda key: "vit_proj." in key)
            logger.info("visual_weight.bin: using its %d vit_proj tensors only", len(vit))
            parts.append(("visual_weight.bin", convert_vit_proj_state_dict(vit)))
        else:
            vit = load_sft_visual_tokenizer(root / "language_model_sft", prefix=SFT_PREFIX + "vit_proj.")
            parts.append(("language_model_sft", convert_vit_proj_state_dict(vit)))
    return merge_parts(parts)


def save_converted(
    state_dict: dict[str, torch.Tensor],
    output_dir: str | Path,
    config=None,
    dtype: torch.dtype = torch.bfloat16,
):
    """Load `state_dict` strictly into a `VideoLavitVisualTokenizer` and `save_pretrained` it (safetensors)."""
    from ..modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
    from ..modeling.modeling_visual_tokenizer import VideoLavitVisualTokenizer

    config = config or VideoLavitVisualTokenizerConfig()
    with torch.device("meta"):
        model = VideoLavitVisualTokenizer(config)
    check_complete(state_dict, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    model.load_state_dict({k: v.to(dtype) for k, v in state_dict.items()}, strict=True, assign=True)
    model.save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint_dir", type=Path, help="folder of the released checkpoint (rain1011/Video-LaVIT-v1)")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--merger-source", choices=["tokenizer_encoder", "language_model_sft"], default="tokenizer_encoder")
    parser.add_argument("--dtype", choices=["bfloat16", "float32", "float16"], default="bfloat16")
    parser.add_argument("--config", type=Path, help="config.json for non-released sizes (default: released config)")
    args = parser.parse_args(argv)
    config = None
    if args.config is not None:
        from ..modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig

        config = VideoLavitVisualTokenizerConfig.from_json_file(str(args.config))
    state_dict = convert_checkpoint(args.checkpoint_dir, args.merger_source)
    save_converted(state_dict, args.output_dir, config=config, dtype=getattr(torch, args.dtype))
    print(f"wrote {len(state_dict)} tensors to {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
