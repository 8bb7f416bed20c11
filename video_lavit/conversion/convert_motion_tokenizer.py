"""Convert the original Video-LaVIT motion tokenizer weights to :class:`VideoLavitMotionTokenizer`.

Sources:

* ``motion_tokenizer.bin`` at the top of the released model folder (keys ``encoder.*``, ``decoder.*``,
  ``encode_task_layer.*``, ``decode_task_layer.*``, ``quantize.embedding.weight``);
* the understanding checkpoint ``language_model_sft`` (a ``.bin`` file or a sharded folder), where the same module
  lives under ``model.motion_tokenizer.`` (bf16).

Usage::

    python -m video_lavit.conversion.convert_motion_tokenizer --checkpoint /path/motion_tokenizer.bin --output-dir out
    python -m video_lavit.conversion.convert_motion_tokenizer --checkpoint /path/language_model_sft \
        --prefix model.motion_tokenizer. --output-dir out

Every original key must be mapped and every tensor of ours filled; otherwise a ``ValueError`` lists the
offending keys. The functions work on meta tensors (used by the released-key check).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from ..modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from ._utils import check_state_dict, load_weights_file, rename_by_rules, rename_keys

SFT_PREFIX = "model.motion_tokenizer."

# (original key pattern, our key template); applied after stripping the source prefix.
_RENAMES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^encoder\.pos_embed$"), "encoder.spatial_position_embedding"),
    (re.compile(r"^encoder\.temp_pos$"), "encoder.temporal_position_embedding"),
    (re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.norm0\.(weight|bias)$"), r"\1.layers.\2.spatial_norm.\3"),
    (re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.norm1\.(weight|bias)$"), r"\1.layers.\2.temporal_norm.\3"),
    (re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.norm2\.(weight|bias)$"), r"\1.layers.\2.mlp_norm.\3"),
    (
        re.compile(
            r"^(encoder|decoder)\.blocks\.(\d+)\.(spatial_attention|temporal_attention)\."
            r"(q_bias|v_bias|qkv\.weight|proj\.weight|proj\.bias)$"
        ),
        r"\1.layers.\2.\3.\4",
    ),
    (re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$"), r"\1.layers.\2.mlp.\3.\4"),
    (re.compile(r"^(encoder|decoder)\.(norm|in_proj)\.(weight|bias)$"), r"\1.\2.\3"),
    (re.compile(r"^encoder\.down_sample_layers\.(\d+)\.conv\.(weight|bias)$"), r"encoder.downsamplers.\1.conv.\2"),
    (re.compile(r"^decoder\.up_sample_layers\.(\d+)\.conv\.(weight|bias)$"), r"decoder.upsamplers.\1.conv.\2"),
    (re.compile(r"^encode_task_layer\.0\.(weight|bias)$"), r"quant_projection.fc1.\1"),
    (re.compile(r"^encode_task_layer\.2\.(weight|bias)$"), r"quant_projection.fc2.\1"),
    (re.compile(r"^decode_task_layer\.0\.(weight|bias)$"), r"output_projection.fc1.\1"),
    (re.compile(r"^decode_task_layer\.2\.(weight|bias)$"), r"output_projection.fc2.\1"),
    (re.compile(r"^quantize\.embedding\.weight$"), "quantizer.embedding.weight"),
]

CODEBOOK_KEY = "quantizer.embedding.weight"
# Training-only EMA statistics the original does not store; derived so that an EMA step starts from the codebook.
DERIVED_KEYS = ("quantizer.ema_cluster_size", "quantizer.ema_embedding_sum")


def rename_key(original_key: str) -> str | None:
    """Our name for an original (prefix-free) key, or ``None`` when no rule matches."""
    return rename_by_rules(original_key, _RENAMES)


def expected_state_dict_shapes(config: VideoLavitMotionTokenizerConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor in our state dict for ``config``, from a model built on the meta device."""
    from ..modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer

    with torch.device("meta"):
        model = VideoLavitMotionTokenizer(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def convert_motion_tokenizer_state_dict(
    state_dict: dict[str, torch.Tensor],
    prefix: str = "",
    config: VideoLavitMotionTokenizerConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Original state dict -> ours.

    Args:
        state_dict: original tensors. With a non-empty ``prefix`` (e.g. ``"model.motion_tokenizer."`` for the SFT
            checkpoint) only keys under the prefix are considered, so the rest of a larger checkpoint is left to
            other converters; with ``prefix=""`` every key must belong to the motion tokenizer.
        prefix: prefix to strip from the original keys.
        config: when given, the result is checked against the keys and shapes of our model for this config.

    Raises:
        ValueError: listing original keys no rule maps, and (with ``config``) keys of ours left unfilled or filled
            with a wrong shape.
    """
    ours = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    converted, unmapped = rename_keys(ours, lambda key: rename_key(key[len(prefix) :]))
    if unmapped:
        raise ValueError(f"{len(unmapped)} original motion-tokenizer keys have no mapping: {unmapped}")
    if CODEBOOK_KEY not in converted:
        raise ValueError(f"no codebook found: expected the key {prefix + 'quantize.embedding.weight'!r}")
    codebook = converted[CODEBOOK_KEY]
    converted[DERIVED_KEYS[0]] = torch.ones(codebook.shape[0], dtype=torch.float32, device=codebook.device)
    converted[DERIVED_KEYS[1]] = codebook.to(torch.float32).clone()

    if config is not None:
        check_state_dict(converted, expected_state_dict_shapes(config), "converted motion tokenizer state dict")
    return converted


def load_original_state_dict(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """Read a ``.bin`` file, or a folder holding one or a sharded ``pytorch_model.bin.index.json`` (only the shards
    holding ``prefix`` keys are read, and of those only the ``prefix`` tensors), memory-mapped where possible."""
    path = Path(path)
    if path.is_file():
        return load_weights_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}")
    index = path / "pytorch_model.bin.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted({shard for key, shard in weight_map.items() if key.startswith(prefix)})
        if not shards:
            raise ValueError(f"{index} lists no key starting with {prefix!r}")
        state_dict = {}
        for shard in shards:
            state_dict.update(load_weights_file(path / shard, keep=lambda key: key.startswith(prefix)))
        return state_dict
    for name in ("motion_tokenizer.bin", "pytorch_model.bin"):
        if (path / name).is_file():
            return load_weights_file(path / name)
    raise FileNotFoundError(f"{path} holds neither motion_tokenizer.bin, pytorch_model.bin nor a sharded index")


def convert_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    prefix: str = "",
    config: VideoLavitMotionTokenizerConfig | None = None,
    dtype: torch.dtype | None = None,
):
    """Convert ``checkpoint`` and write ``config.json`` + ``model.safetensors`` to ``output_dir``; returns the
    loaded :class:`VideoLavitMotionTokenizer`."""
    from ..modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer

    config = config or VideoLavitMotionTokenizerConfig()
    converted = convert_motion_tokenizer_state_dict(load_original_state_dict(checkpoint, prefix), prefix, config)
    dtype = dtype or converted[CODEBOOK_KEY].dtype
    converted = {
        k: (v.to(dtype) if v.is_floating_point() and k not in DERIVED_KEYS else v) for k, v in converted.items()
    }
    with torch.device("meta"):
        model = VideoLavitMotionTokenizer(config)
    model.load_state_dict(converted, strict=True, assign=True)
    model.config.dtype = dtype
    model.save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, help="motion_tokenizer.bin or the SFT checkpoint")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--prefix", default="", help=f"key prefix to convert, e.g. {SFT_PREFIX!r} for the SFT model")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    model = convert_checkpoint(args.checkpoint, args.output_dir, args.prefix, dtype=dtype)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output_dir} ({n:,} parameters, {model.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
