"""Convert the released keyframe detokenizer to the diffusers-format `VideoLavitKeyframePipeline`.

Sources in the released checkpoint folder (`rain1011/Video-LaVIT-v1`):

* `visual_tokenizer/highres_tokenizer_decoder.bin` - the `HighresVQDecoder` state dict (287 tensors);
* `visual_tokenizer/tokenizer_encoder.bin` - only its `quantize.embedding.weight` (the visual codebook) is used;
* `image_detokenizer/{unet,vae,scheduler}` - diffusers folders of the SDXL-layout UNet, the VAE and the scheduler.

Usage::

    python -m video_lavit.conversion.convert_keyframe_decoder CHECKPOINT_DIR OUTPUT_DIR [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from ..modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from ._utils import check_state_dict, load_weights_file, rename_by_rules, rename_keys

DECODER_FILE = "visual_tokenizer/highres_tokenizer_decoder.bin"
TOKENIZER_FILE = "visual_tokenizer/tokenizer_encoder.bin"
CODEBOOK_KEY = "quantize.embedding.weight"
IMAGE_DETOKENIZER_DIR = "image_detokenizer"

# original key pattern -> our key template
_KEY_RULES = [
    (r"pos_embed", "code_position_embedding"),
    (r"query_embed", "query_embeddings"),
    (r"in_proj\.(weight|bias)", r"code_proj.\1"),
    (r"blocks\.(\d+)\.norm0\.(weight|bias)", r"layers.\1.self_attn_norm.\2"),
    (r"blocks\.(\d+)\.self_attn\.qkv\.(weight|bias)", r"layers.\1.self_attn.qkv.\2"),
    (r"blocks\.(\d+)\.self_attn\.proj\.(weight|bias)", r"layers.\1.self_attn.out_proj.\2"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", r"layers.\1.cross_attn_norm.\2"),
    (r"blocks\.(\d+)\.cross_attn\.query\.(weight|bias)", r"layers.\1.cross_attn.q_proj.\2"),
    (r"blocks\.(\d+)\.cross_attn\.key\.(weight|bias)", r"layers.\1.cross_attn.k_proj.\2"),
    (r"blocks\.(\d+)\.cross_attn\.value\.(weight|bias)", r"layers.\1.cross_attn.v_proj.\2"),
    (r"blocks\.(\d+)\.cross_attn\.proj\.(weight|bias)", r"layers.\1.cross_attn.out_proj.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"layers.\1.mlp_norm.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"layers.\1.mlp.\2.\3"),
    (r"norm\.(weight|bias)", r"norm.\1"),
    (r"decode_task_layer\.(0|2)\.(weight|bias)", r"feature_head.\1.\2"),
    (r"unet_proj_1\.(weight|bias)", r"prompt_proj_1.\1"),
    (r"unet_proj_2\.(weight|bias)", r"prompt_proj_2.\1"),
    (r"unet_attnpool\.positional_embedding", "pooler.position_embedding"),
    (r"unet_attnpool\.(q_proj|k_proj|v_proj)\.(weight|bias)", r"pooler.\1.\2"),
    (r"unet_attnpool\.c_proj\.(weight|bias)", r"pooler.out_proj.\1"),
]
_COMPILED_RULES = [(re.compile(pattern), target) for pattern, target in _KEY_RULES]


def rename_original_key(key: str) -> str | None:
    """Our parameter name for an original `HighresVQDecoder` key, or None when no rule maps it."""
    return rename_by_rules(key, _COMPILED_RULES)


def convert_keyframe_decoder_state_dict(
    original: dict[str, torch.Tensor], codebook: torch.Tensor, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """Rename an original `HighresVQDecoder` state dict and add the visual codebook (`[codebook_size, code_dim]`).

    Raises `ValueError` listing every key no rule maps. Works with tensors on the meta device.
    """
    converted, unmapped = rename_keys(original, rename_original_key)
    if unmapped:
        raise ValueError(f"{len(unmapped)} keys of the keyframe decoder checkpoint are not mapped: {unmapped}")
    if dtype is not None:
        converted = {k: v.to(dtype) for k, v in converted.items()}
    if codebook.ndim != 2:
        raise ValueError(f"the codebook must be [codebook_size, code_dim], got shape {tuple(codebook.shape)}")
    converted["codebook.weight"] = codebook if dtype is None else codebook.to(dtype)
    return converted


def load_converted_state_dict(model: VideoLavitKeyframeDecoder, state_dict: dict[str, torch.Tensor]) -> None:
    """Load strictly, raising `ValueError` that lists missing, unexpected and wrongly shaped keys."""
    ours = model.state_dict()
    check_state_dict(state_dict, {k: tuple(v.shape) for k, v in ours.items()}, "keyframe decoder state dict")
    model.load_state_dict(state_dict, strict=True, assign=any(t.is_meta for t in ours.values()))


def config_from_original_state_dict(
    original: dict[str, torch.Tensor], codebook: torch.Tensor, num_attention_heads: int = 16,
    pooler_num_heads: int | None = None, layer_norm_eps: float = 1e-5,
) -> dict:
    """Sizes read from the tensor shapes; head counts cannot be, so they are arguments (released: 16)."""
    num_layers = 1 + max(int(k.split(".")[1]) for k in original if k.startswith("blocks."))
    return dict(
        codebook_size=codebook.shape[0],
        code_dim=original["in_proj.weight"].shape[1],
        hidden_size=original["in_proj.weight"].shape[0],
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=original["blocks.0.mlp.fc1.weight"].shape[0],
        num_queries=original["query_embed"].shape[1],
        qkv_bias="blocks.0.self_attn.qkv.bias" in original,
        layer_norm_eps=layer_norm_eps,
        feature_dim=original["decode_task_layer.2.weight"].shape[0],
        prompt_embed_dims=(original["unet_proj_1.weight"].shape[0], original["unet_proj_2.weight"].shape[0]),
        pooled_embed_dim=original["unet_attnpool.c_proj.weight"].shape[0],
        pooler_num_heads=pooler_num_heads or num_attention_heads,
    )


def load_original_keyframe_decoder(
    checkpoint_dir: str | Path, dtype: torch.dtype | None = None, num_attention_heads: int = 16,
    pooler_num_heads: int | None = None,
) -> VideoLavitKeyframeDecoder:
    """Build our decoder from the two original `.bin` files of a checkpoint folder (head counts: released 16).

    Both files are memory-mapped: of `tokenizer_encoder.bin` only the codebook is read, and the decoder is built
    on the meta device and takes the checkpoint tensors (cast to `dtype` when given), so no second copy is made.
    """
    checkpoint_dir = Path(checkpoint_dir)
    original = load_weights_file(checkpoint_dir / DECODER_FILE)
    tokenizer = load_weights_file(checkpoint_dir / TOKENIZER_FILE, keep=lambda key: key == CODEBOOK_KEY)
    if CODEBOOK_KEY not in tokenizer:
        raise ValueError(f"{checkpoint_dir / TOKENIZER_FILE} has no {CODEBOOK_KEY!r}")
    codebook = tokenizer[CODEBOOK_KEY]
    config = config_from_original_state_dict(original, codebook, num_attention_heads, pooler_num_heads)
    with torch.device("meta"):
        model = VideoLavitKeyframeDecoder(**config)
    # without a dtype the decoder is in the default dtype, as if it had been built materialised
    converted = convert_keyframe_decoder_state_dict(original, codebook, dtype or torch.get_default_dtype())
    load_converted_state_dict(model, converted)
    return model


def load_original_image_detokenizer(checkpoint_dir: str | Path, dtype: torch.dtype | None = None):
    """UNet, VAE and scheduler of `image_detokenizer/`, loaded with diffusers' own loaders. As in the original,
    the scheduler is `EulerAncestralDiscreteScheduler` when its config names that class and `DDIMScheduler`
    otherwise."""
    from diffusers import AutoencoderKL, DDIMScheduler, EulerAncestralDiscreteScheduler, UNet2DConditionModel

    folder = Path(checkpoint_dir) / IMAGE_DETOKENIZER_DIR
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)
    with open(folder / "scheduler" / "scheduler_config.json", encoding="utf-8") as f:
        class_name = json.load(f).get("_class_name")
    scheduler_cls = EulerAncestralDiscreteScheduler if class_name == "EulerAncestralDiscreteScheduler" else DDIMScheduler
    scheduler = scheduler_cls.from_pretrained(folder, subfolder="scheduler")
    return unet, vae, scheduler


def convert_keyframe_pipeline(
    checkpoint_dir: str | Path, output_dir: str | Path, dtype: torch.dtype | None = None, num_attention_heads: int = 16,
    pooler_num_heads: int | None = None,
):
    """Write a `VideoLavitKeyframePipeline` (safetensors) to `output_dir` and return it. Head counts cannot be read
    from the weights: `num_attention_heads` (released 16) and `pooler_num_heads` (default: `num_attention_heads`)."""
    from ..pipelines.pipeline_video_lavit_keyframe import VideoLavitKeyframePipeline

    decoder = load_original_keyframe_decoder(checkpoint_dir, dtype, num_attention_heads, pooler_num_heads)
    unet, vae, scheduler = load_original_image_detokenizer(checkpoint_dir, dtype)
    pipe = VideoLavitKeyframePipeline(keyframe_decoder=decoder, unet=unet, vae=vae, scheduler=scheduler)
    pipe.save_pretrained(output_dir, safe_serialization=True)
    return pipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint_dir", type=Path, help="released Video-LaVIT checkpoint folder")
    parser.add_argument("output_dir", type=Path, help="where the diffusers pipeline folder is written")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None)
    parser.add_argument("--num-attention-heads", type=int, default=16, help="decoder heads (released: 16)")
    parser.add_argument("--pooler-num-heads", type=int, default=None, help="pooler heads (default: decoder heads)")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    convert_keyframe_pipeline(args.checkpoint_dir, args.output_dir, dtype, args.num_attention_heads, args.pooler_num_heads)
    print(f"wrote {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
