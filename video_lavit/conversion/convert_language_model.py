"""Convert the released Video-LaVIT language models into `VideoLavitForConditionalGeneration` checkpoints.

Sources (folder layout of `rain1011/Video-LaVIT-v1`):

* `language_model/`: the generation LLM, a transformers `LlamaForCausalLM` (3 `.bin` shards, vocabulary 49412);
  its keyframe/motion tokenizers come from `visual_tokenizer/` and `motion_tokenizer.bin`;
* `language_model_sft/`: the understanding LLM (`VideoLaVITLlamaForCausalLM`, 4 shards) that also holds the whole
  keyframe tokenizer under `model.visual_tokenizer.` and the motion tokenizer under `model.motion_tokenizer.`.

Key mapping: `model.*` -> `model.language_model.*`, `lm_head.weight` unchanged; tokenizer keys are renamed by
`convert_visual_tokenizer` / `convert_motion_tokenizer`. A key no rule maps, or one of our tensors left without a
source, raises `ValueError` listing them. Renaming never reads tensor data, so it works on the meta device.

Usage::

    python -m video_lavit.conversion.convert_language_model CHECKPOINT_ROOT OUTPUT_DIR
        [--variant understanding|generation] [--dtype bfloat16] [--remote-code]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from ._utils import check_state_dict, load_weights_file

LLM_PREFIX = "model."
OUR_LLM_PREFIX = "model.language_model."
LM_HEAD_KEY = "lm_head.weight"
VISUAL_PREFIX = "model.visual_tokenizer."
MOTION_PREFIX = "model.motion_tokenizer."
# RoPE frequencies are recomputed from the config; transformers < 4.35 wrote them into checkpoints
_RECOMPUTED_SUFFIX = ".self_attn.rotary_emb.inv_freq"
TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
                   "added_tokens.json")
# config.json keys of the original Llama that carry architecture (everything else is runtime or bookkeeping)
_TEXT_CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps",
                     "initializer_range", "attention_bias", "bos_token_id", "eos_token_id", "tie_word_embeddings")


def convert_llm_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the Llama part (`model.*` without the tokenizers, `lm_head.weight`) to our names.

    Raises `ValueError` listing every key outside the Llama and tokenizer prefixes.
    """
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        if key.startswith((VISUAL_PREFIX, MOTION_PREFIX)) or key.endswith(_RECOMPUTED_SUFFIX):
            continue
        if key == LM_HEAD_KEY:
            converted[key] = tensor
        elif key.startswith(LLM_PREFIX):
            converted[OUR_LLM_PREFIX + key[len(LLM_PREFIX) :]] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} language-model key(s) have no mapping: {sorted(unknown)}")
    return converted


def convert_language_model_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `language_model/` or `language_model_sft/` state dict -> our `VideoLavitForConditionalGeneration`
    keys. Tokenizer keys (SFT only) go through the tokenizer converters; every key is accounted for."""
    converted = convert_llm_keys(state_dict)
    if any(k.startswith(VISUAL_PREFIX) for k in state_dict):
        from .convert_visual_tokenizer import split_sft_state_dict

        visual, _ = split_sft_state_dict(
            {k: v for k, v in state_dict.items() if k.startswith(VISUAL_PREFIX)}, prefix=VISUAL_PREFIX
        )
        converted.update({"model.visual_tokenizer." + k: v for k, v in visual.items()})
    if any(k.startswith(MOTION_PREFIX) for k in state_dict):
        from .convert_motion_tokenizer import convert_motion_tokenizer_state_dict

        motion = convert_motion_tokenizer_state_dict(state_dict, prefix=MOTION_PREFIX)
        converted.update({"model.motion_tokenizer." + k: v for k, v in motion.items()})
    return converted


# every key of ours filled with its shape and nothing extra (also used by `convert_video_lavit`)
check_complete = check_state_dict


def llm_state_dict_shapes(model) -> dict[str, tuple[int, ...]]:
    """Shapes of the Llama part (decoder + `lm_head`) of a `VideoLavitForConditionalGeneration`."""
    return {
        k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(OUR_LLM_PREFIX) or k == LM_HEAD_KEY
    }


def load_language_model_weights(model, converted: dict[str, torch.Tensor]) -> None:
    """Load converted Llama weights (no tokenizer keys) strictly into the decoder and `lm_head` of `model`."""
    check_complete(converted, llm_state_dict_shapes(model), "language-model weights")
    model.model.language_model.load_state_dict(
        {k[len(OUR_LLM_PREFIX) :]: v for k, v in converted.items() if k.startswith(OUR_LLM_PREFIX)}, strict=True
    )
    model.lm_head.load_state_dict({"weight": converted[LM_HEAD_KEY]}, strict=True)


def load_original_shards(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a transformers checkpoint folder (`pytorch_model*.bin` or `model*.safetensors`), memory-mapped
    where the format allows."""
    folder = Path(folder)
    files = sorted(folder.glob("pytorch_model*.bin")) + sorted(folder.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no pytorch_model*.bin or model*.safetensors shards in {folder}")
    state_dict = {}
    for file in files:
        state_dict.update(load_weights_file(file))
    return state_dict


def config_from_original(folder: str | Path):
    """A `VideoLavitConfig` whose text config takes the architecture values of `folder/config.json`."""
    from ..modeling.configuration_video_lavit import VideoLavitConfig

    original = json.loads((Path(folder) / "config.json").read_text())
    text_config = {k: original[k] for k in _TEXT_CONFIG_KEYS if k in original}
    if original.get("rope_scaling") not in (None, {}):
        raise ValueError(f"rope_scaling {original['rope_scaling']} is not supported (the release has none)")
    text_config["rope_parameters"] = {"rope_type": "default", "rope_theta": float(original.get("rope_theta", 10000.0))}
    return VideoLavitConfig(text_config=text_config)


def convert_checkpoint(
    checkpoint_root: str | Path,
    output_dir: str | Path,
    variant: str = "understanding",
    dtype=torch.bfloat16,
    config=None,
    remote_code: bool = False,
):
    """Write a complete `VideoLavitForConditionalGeneration` folder (weights, config, tokenizer files).

    `variant="understanding"` reads `language_model_sft/` only (it holds both tokenizers);
    `variant="generation"` reads `language_model/`, the keyframe tokenizer from `visual_tokenizer/` and the motion
    tokenizer from `motion_tokenizer.bin`. `config` (a `VideoLavitConfig`) replaces the released sizes, e.g. for
    tiny test checkpoints; by default the text config is read from the source `config.json`. `remote_code` also
    writes the model sources (see `save_with_remote_code`).
    """
    from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    root = Path(checkpoint_root)
    if variant == "understanding":
        source = root / "language_model_sft"
        converted = convert_language_model_state_dict(load_original_shards(source))
    elif variant == "generation":
        from .convert_motion_tokenizer import convert_motion_tokenizer_state_dict, load_original_state_dict
        from .convert_visual_tokenizer import convert_checkpoint as convert_visual_checkpoint

        source = root / "language_model"
        converted = convert_language_model_state_dict(load_original_shards(source))
        if any(k.startswith(("model.visual_tokenizer.", "model.motion_tokenizer.")) for k in converted):
            raise ValueError(f"{source} unexpectedly holds tokenizer weights; use variant='understanding'")
        visual = convert_visual_checkpoint(root, merger_source="tokenizer_encoder")
        motion = convert_motion_tokenizer_state_dict(load_original_state_dict(root / "motion_tokenizer.bin"))
        converted.update({"model.visual_tokenizer." + k: v for k, v in visual.items()})
        converted.update({"model.motion_tokenizer." + k: v for k, v in motion.items()})
    else:
        raise ValueError(f"variant must be 'understanding' or 'generation', got {variant!r}")

    config = config if config is not None else config_from_original(source)
    with torch.device("meta"):
        model = VideoLavitForConditionalGeneration(config)
    check_complete(converted, {k: tuple(v.shape) for k, v in model.state_dict().items()}, str(source))
    model.load_state_dict(
        {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in converted.items()}, strict=True, assign=True
    )
    model.config.dtype = dtype
    if remote_code:
        save_with_remote_code(model, output_dir)
    else:
        model.save_pretrained(output_dir)
    copy_tokenizer_files(source, output_dir)
    return model


# `auto_map` of a remote-code folder: every Auto class the model answers to, as `module.Class` of the copied sources
_MODEL_CLASS = "modeling_video_lavit.VideoLavitForConditionalGeneration"
REMOTE_CODE_AUTO_MAP = {
    "AutoConfig": "configuration_video_lavit.VideoLavitConfig",
    "AutoModel": "modeling_video_lavit.VideoLavitModel",
    "AutoModelForCausalLM": _MODEL_CLASS,
    "AutoModelForImageTextToText": _MODEL_CLASS,
    "AutoModelForMultimodalLM": _MODEL_CLASS,
}


def add_remote_code(config, folder: str | Path) -> list[str]:
    """Copy the model's sources (`modeling_video_lavit.py` and every sibling module it imports, as transformers'
    `custom_object_save` would) into `folder` and set `config.auto_map` (`REMOTE_CODE_AUTO_MAP`), so that the
    folder, once `config` is saved there, loads with `trust_remote_code=True` where this package is not installed.
    Touches no weight, so it also serves streamed conversions. Returns the copied file names."""
    from transformers.dynamic_module_utils import get_relative_import_files

    from ..modeling import modeling_video_lavit

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(modeling_video_lavit.__file__)
    files = [source, *map(Path, get_relative_import_files(str(source)))]
    for file in files:
        shutil.copyfile(file, folder / file.name)
    config.auto_map = dict(REMOTE_CODE_AUTO_MAP)
    return sorted({file.name for file in files})


def save_with_remote_code(model, output_dir: str | Path) -> None:
    """`save_pretrained` plus `add_remote_code`; the `auto_map` is set only for this save, so others stay plain."""
    add_remote_code(model.config, output_dir)
    try:
        model.save_pretrained(output_dir)
    finally:
        del model.config.auto_map


def copy_tokenizer_files(source: str | Path, output_dir: str | Path) -> list[str]:
    """Copy the SentencePiece tokenizer files of `source` next to the converted weights; returns their names."""
    copied = []
    for name in TOKENIZER_FILES:
        path = Path(source) / name
        if path.is_file():
            shutil.copy2(path, Path(output_dir) / name)
            copied.append(name)
    if "tokenizer.model" not in copied and "tokenizer.json" not in copied:
        raise FileNotFoundError(f"{source} holds neither tokenizer.model nor tokenizer.json")
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint_root", type=Path, help="folder of the released checkpoint (rain1011/Video-LaVIT-v1)")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--variant", choices=["understanding", "generation"], default="understanding")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    parser.add_argument("--remote-code", action="store_true", help="also write the model sources + auto_map")
    args = parser.parse_args(argv)
    model = convert_checkpoint(
        args.checkpoint_root, args.output_dir, args.variant, getattr(torch, args.dtype), remote_code=args.remote_code
    )
    print(f"wrote {args.output_dir} ({sum(p.numel() for p in model.parameters()):,} parameters, {args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
