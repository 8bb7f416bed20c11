"""Parity of the understanding language model: spliced forward, greedy understanding generation, released keys.

The fixtures ran the original `VideoLaVITLlamaForCausalLM` with stub tokenizers that return recorded keyframe
features and motion codes, so these checks feed the same tensors through our public `visual_features` /
`motion_token_ids` arguments. Every size (Llama config, id layout) is read from the fixture JSON.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..convert_language_model import (
    convert_language_model_state_dict,
    llm_state_dict_shapes,
    load_language_model_weights,
)
from .common import Comparison, Fixture, check_keys_cover, compare_tensors

# original literal -> which layout value it stands for (see the fixture's `constant_substitutions`)
_LITERALS = {
    "32000": "text_vocab_size",
    "32001": "image_end",
    "32002": "visual_offset",
    "16384": "visual_codebook",
    "48386": "motion_start",
    "48387": "motion_end",
    "48388": "motion_offset",
    "1026": "motion_vocab_with_markers",
}


def token_layout_from_fixture(spec: dict) -> dict[str, int]:
    """Text vocabulary and codebook sizes of the fixture, cross-checked against its constant substitutions."""
    layout = spec["token_layout"]
    values = {
        "text_vocab_size": layout["text"][1],
        "image_end": layout["image_end"],
        "visual_offset": layout["visual_codes"][0],
        "visual_codebook": layout["visual_codes"][1] - layout["visual_codes"][0],
        "motion_start": layout["motion_start"],
        "motion_end": layout["motion_end"],
        "motion_offset": layout["motion_codes"][0],
        "motion_vocab_with_markers": layout["motion_codes"][1] - layout["motion_codes"][0] + 2,
    }
    for old, new in spec.get("constant_substitutions", {}).get("mapping_old_to_new", {}).items():
        name = _LITERALS.get(str(old))
        if name is not None and values[name] != new:
            raise ValueError(f"fixture substitutes {old} -> {new} but its token_layout gives {name}={values[name]}")
    return {
        "text_vocab_size": values["text_vocab_size"],
        "visual_codebook_size": values["visual_codebook"],
        "motion_codebook_size": values["motion_vocab_with_markers"] - 2,
        "vocab_size": layout["vocab_size"],
    }


def config_from_fixture(spec: dict):
    """A `VideoLavitConfig` with the fixture's Llama config and id layout; the tokenizers get minimal sizes (the
    fixtures replace them by recorded outputs)."""
    from ...modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
    from ...modeling.configuration_video_lavit import VideoLavitConfig
    from ...modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig

    llama = spec["llama_config"]
    if llama.get("rope_scaling") not in (None, {}):
        raise ValueError(f"fixture uses rope_scaling {llama['rope_scaling']}, which the release does not")
    text_keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "initializer_range",
                 "bos_token_id", "eos_token_id", "tie_word_embeddings")
    text_config = {k: llama[k] for k in text_keys if k in llama}
    text_config["attention_bias"] = bool(llama.get("attention_bias", False))
    # the original bounds a spliced prompt by `tokenizer_model_max_length` (it truncates there), not by
    # `max_position_embeddings`; default RoPE does not depend on the latter, so the larger bound changes no value
    text_config["max_position_embeddings"] = max(
        int(llama["max_position_embeddings"]), int(llama.get("tokenizer_model_max_length") or 0)
    )
    text_config["rope_parameters"] = {"rope_type": "default", "rope_theta": float(llama.get("rope_theta", 10000.0))}
    layout = token_layout_from_fixture(spec)
    hidden = llama["hidden_size"]
    visual = VideoLavitVisualTokenizerConfig(
        image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
        merger_intermediate_size=64, codebook_size=layout["visual_codebook_size"], code_dim=8, projection_dim=hidden,
    )
    motion = VideoLavitMotionTokenizerConfig(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=layout["motion_codebook_size"], code_dim=8,
    )
    config = VideoLavitConfig(
        text_config=text_config, visual_tokenizer_config=visual, motion_tokenizer_config=motion,
        text_vocab_size=layout["text_vocab_size"],
    )
    if config.layout_vocab_size != layout["vocab_size"]:
        raise ValueError(f"derived vocabulary {config.layout_vocab_size} != fixture's {layout['vocab_size']}")
    return config


def model_from_fixture(fixture: Fixture, weights_file: str, spec: dict | None = None):
    """Our model at the fixture's size (from `spec`, default the fixture's JSON) with the fixture's Llama weights
    loaded through the conversion code."""
    from ...modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    config = config_from_fixture(spec or fixture.spec)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = VideoLavitForConditionalGeneration(config).eval()
    load_language_model_weights(model, convert_language_model_state_dict(fixture.weights(weights_file)))
    return model


def _visual_inputs(spec: dict, io: dict[str, torch.Tensor]):
    """Per-row placeholder inputs of the llm_forward fixture: (visual feature list, motion rows, clips per video)
    for each batch row, in the order the original `images` argument gave them."""
    n_features = len([k for k in io if k.startswith("input.visual_features.")])
    features = [io[f"input.visual_features.{i}"] for i in range(n_features)]
    motion = io["input.motion_tokens"]
    rows, next_feature, next_clip = [], 0, 0
    described = spec.get("images_argument", {})
    for b in range(io["input.input_ids"].shape[0]):
        text = described.get(f"batch{b}", "")
        if text.startswith("video"):
            found = re.search(r"(\d+)\s*clips?", text)
            clips = int(found.group(1)) if found else motion.shape[0] - next_clip
            rows.append(("video", features[next_feature : next_feature + clips], motion[next_clip : next_clip + clips],
                         [clips]))
            next_feature += clips
            next_clip += clips
        elif text.startswith("image"):
            rows.append(("image", features[next_feature : next_feature + 1], motion[:0], []))
            next_feature += 1
        else:
            rows.append(("text", [], motion[:0], []))
    if next_feature != n_features or next_clip != motion.shape[0]:
        raise ValueError(f"fixture rows use {next_feature}/{n_features} features and {next_clip}/{motion.shape[0]} clips")
    return rows


def _batch_inputs(rows):
    features = [f for row in rows for f in row[1]]
    motion = torch.cat([row[2] for row in rows], dim=0)
    clips = [c for row in rows for c in row[3]]
    return features, (motion if motion.shape[0] else None), (torch.tensor(clips) if clips else None)


def _rule(spec: dict, name: str, reference: torch.Tensor):
    tol = spec.get("tolerance", {}).get(name)
    if tol is None or (not reference.is_floating_point() and not tol.get("atol")):
        return "exact", 0.0, 0.0
    return "allclose", float(tol.get("atol") or 0.0), float(tol.get("rtol") or 0.0)


def _compare(spec: dict, name: str, ours: torch.Tensor, reference: torch.Tensor, mask=None) -> list[Comparison]:
    rule, atol, rtol = _rule(spec, name, reference)
    if not reference.is_floating_point() or not torch.isinf(reference).any():
        return [compare_tensors(name, ours, reference, rule, atol, rtol, mask)]
    # -inf entries (suppressed ids) must match exactly; the finite ones by tolerance
    ours = torch.as_tensor(ours).detach().cpu()
    if tuple(ours.shape) != tuple(reference.shape):
        return [Comparison(name, False, float("inf"), f"shape {tuple(ours.shape)} != {tuple(reference.shape)}")]
    finite = torch.isfinite(reference)
    return [
        compare_tensors(f"{name} (inf pattern)", ours.isinf() & (ours.sign() == reference.sign()), ~finite),
        compare_tensors(name, ours, reference, rule, atol, rtol, finite),
    ]


@torch.no_grad()
def check_llm_forward(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    spec = fixture.spec
    io = fixture.tensors(spec.get("io_file"))
    model = model_from_fixture(fixture, spec.get("weights_file", "llm.safetensors"))
    features, motion, clips = _batch_inputs(_visual_inputs(spec, io))
    inputs = dict(
        input_ids=io["input.input_ids"],
        attention_mask=io["input.attention_mask"],
        visual_features=features,
        motion_token_ids=motion,
        clips_per_video=clips,
    )
    spliced = model.model.build_multimodal_embeddings(labels=io["input.labels"], **inputs)
    out = model(labels=io["input.labels"], **inputs)
    mask = io["intermediate.attention_mask"].bool()[..., None]
    results = []
    results += _compare(spec, "intermediate.inputs_embeds", spliced.inputs_embeds, io["intermediate.inputs_embeds"])
    results += _compare(spec, "intermediate.attention_mask", out.attention_mask, io["intermediate.attention_mask"])
    results += _compare(spec, "intermediate.labels", out.labels, io["intermediate.labels"])
    results += _compare(spec, "output.logits", out.logits, io["output.logits"], mask=mask)
    results += _compare(spec, "output.loss", out.loss.reshape(io["output.loss"].shape), io["output.loss"])
    return results


def _generate_kwargs(call: dict) -> dict:
    kwargs = {}
    for key in ("do_sample", "num_beams", "min_new_tokens", "max_new_tokens", "bos_token_id", "eos_token_id",
                "pad_token_id", "repetition_penalty", "length_penalty", "num_return_sequences", "use_cache"):
        if key in call["kwargs"]:
            kwargs[key] = call["kwargs"][key]
    suppress = call["kwargs"].get("suppress_tokens")
    if isinstance(suppress, dict):
        ids = [i for lo, hi in suppress["inclusive_ranges"] for i in range(lo, hi + 1)]
        if len(ids) != suppress.get("count", len(ids)):
            raise ValueError(f"suppress_tokens ranges give {len(ids)} ids, the fixture says {suppress['count']}")
        kwargs["suppress_tokens"] = ids
    elif suppress is not None:
        kwargs["suppress_tokens"] = list(suppress)
    if kwargs.get("do_sample"):
        raise ValueError("only greedy understanding generation is recorded")
    return kwargs


@torch.no_grad()
def check_llm_understanding_generate(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    spec = fixture.spec
    io = fixture.tensors(spec.get("io_file"))
    # e.g. "llm_forward (same stub tables: ...)": the fixture name is the first word
    source = spec.get("uses_inputs_of", "llm_forward").split()[0]
    source_fixture = Fixture.load(fixture.directory / f"{source}.json")
    source_io = source_fixture.tensors(source_fixture.spec.get("io_file"))
    rows = {kind: row for kind, *row in _visual_inputs(source_fixture.spec, source_io)}
    # the generate fixture records no Llama config of its own: it reuses the forward fixture's model
    model_spec = {**source_fixture.spec, **spec}
    model = model_from_fixture(fixture, spec.get("weights_file", "llm.safetensors"), model_spec)
    results = []
    for call in spec["generate_calls"]:
        name = call["row"]
        features, motion, clips = rows[name]
        input_ids = io[f"input.{name}.input_ids"]
        mask = call["kwargs"].get("attention_mask", {}).get("values")
        attention_mask = torch.tensor(mask, dtype=torch.long) if mask is not None else torch.ones_like(input_ids)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            visual_features=list(features),
            motion_token_ids=motion if motion.shape[0] else None,
            clips_per_video=torch.tensor(clips) if clips else None,
            output_scores=True,
            return_dict_in_generate=True,
            **_generate_kwargs(call),
        )
        results += _compare(spec, f"output.{name}.sequences", out.sequences, io[f"output.{name}.sequences"])
        scores = torch.stack(out.scores, dim=1)
        results += _compare(spec, f"output.{name}.scores", scores, io[f"output.{name}.scores"])
    return results


# ---------------------------------------------------------------------------------------------- released keys
def _released_model():
    from ...modeling.configuration_video_lavit import VideoLavitConfig
    from ...modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    with torch.device("meta"):
        return VideoLavitForConditionalGeneration(VideoLavitConfig())


def _meta_state_dict(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {name: torch.empty(shape, device="meta") for name, shape in keys.items()}


def check_released_language_model(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    """`language_model/`: the Llama part of our full-size model (the tokenizers come from other files)."""
    converted = convert_language_model_state_dict(_meta_state_dict(keys))
    ours = llm_state_dict_shapes(_released_model())
    return check_keys_cover("language_model", {k: tuple(v.shape) for k, v in converted.items()}, ours)


def check_released_language_model_sft(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    """`language_model_sft/`: every tensor of our full-size model, tokenizers included."""
    converted = convert_language_model_state_dict(_meta_state_dict(keys))
    ours = {k: tuple(v.shape) for k, v in _released_model().state_dict().items()}
    return check_keys_cover("language_model_sft", {k: tuple(v.shape) for k, v in converted.items()}, ours)
