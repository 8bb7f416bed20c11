"""Parity of keyframe/motion token generation (``llm_t2v``, ``llm_t2v_fullvocab``).

The original ran ``VideoLaVITforGeneration.generate_image_tokenids`` then ``generate_motion_tokenids`` (both a
stock ``LlamaForCausalLM.generate`` with ``guidance_scale``) and pruned the motion ids in ``video_decoding``.
We run the same stages through :class:`~video_lavit.modeling.generation_video_lavit.
VideoLavitVideoTokenGenerationMixin` on the fixture's weights and compare ids exactly, the processed scores
within the fixture's tolerance, and the public ``generate_video_tokens`` result.

Seeded sampling: the fixture's ``modes.sampled`` text names the seed given to ``torch.manual_seed`` before the
keyframe stage; transformers' sampling then calls ``torch.multinomial`` once per step on ``[B, vocab]``
probabilities. Our sampler makes the same call with a ``torch.Generator`` seeded identically, so the draws match.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ...modeling.generation_video_lavit import ScoreRecorder, VideoLavitTokenLayout
from .common import Comparison, Fixture, compare_tensors

def build_generation_model(spec: dict, llama_config: dict, state_dict: dict):
    """Our ``VideoLavitForConditionalGeneration`` at the fixture's size, with the fixture's original LLaMA weights
    loaded through the language-model conversion (the tokenizers are not used by token generation)."""
    from ...modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
    from ..convert_language_model import convert_language_model_state_dict, load_language_model_weights
    from .llm import config_from_fixture

    config = config_from_fixture({**spec, "llama_config": llama_config})
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = VideoLavitForConditionalGeneration(config).eval()
    load_language_model_weights(model, convert_language_model_state_dict(state_dict))
    return model


def _layout(token_layout: dict, motion_tokens_per_clip: int, vocab_size: int) -> VideoLavitTokenLayout:
    visual_start, visual_end = token_layout["visual_codes"]
    motion_start, motion_end = token_layout["motion_codes"]
    return VideoLavitTokenLayout(
        image_start_token_id=token_layout["image_start"],
        image_end_token_id=token_layout["image_end"],
        visual_token_offset=visual_start,
        visual_vocab_size=visual_end - visual_start,
        motion_start_token_id=token_layout["motion_start"],
        motion_end_token_id=token_layout["motion_end"],
        motion_token_offset=motion_start,
        motion_vocab_size=motion_end - motion_start,
        motion_tokens_per_clip=motion_tokens_per_clip,
        vocab_size=vocab_size,
        pad_token_id=token_layout["eos"],
    )


def _llama_config(fixture: Fixture) -> dict:
    """The fixture's LLaMA config; ``llm_t2v`` shares ``llm.safetensors`` (and its config) with ``llm_forward``."""
    if "llama_config" in fixture.spec:
        return fixture.spec["llama_config"]
    weights_note = json.dumps(fixture.spec.get("weights_files", {}))
    for sibling in sorted(fixture.directory.glob("*.json")):
        if sibling.stem == fixture.name:
            continue
        with open(sibling, encoding="utf-8") as f:
            spec = json.load(f)
        if "llama_config" in spec and spec.get("weights_file") and spec["weights_file"] in weights_note:
            return spec["llama_config"]
    raise FileNotFoundError(f"fixture {fixture.name}: no llama_config in it or in a fixture sharing its weights")


def _llama_weights_file(fixture: Fixture) -> str:
    if "weights_file" in fixture.spec:
        return fixture.spec["weights_file"]
    described = fixture.spec["weights_files"]["llama_model"]
    return described.split()[0]


def _sampling_seed(fixture: Fixture) -> int:
    text = fixture.spec["modes"]["sampled"]
    match = re.search(r"manual_seed\(\s*seed\s*\*\s*(\d+)\s*\+\s*(\d+)\s*\)", text)
    if match is None:
        match_plain = re.search(r"manual_seed\(\s*(\d+)\s*\)", text)
        if match_plain is None:
            raise ValueError(f"fixture {fixture.name}: cannot read the sampling seed from {text!r}")
        return int(match_plain.group(1))
    return int(fixture.spec["seed"]) * int(match.group(1)) + int(match.group(2))


def _compare_scores(name: str, ours: torch.Tensor, reference: torch.Tensor, tol: dict) -> list[Comparison]:
    """Scores hold -inf at suppressed ids: compare where they are finite exactly, values there within tol."""
    if tuple(ours.shape) != tuple(reference.shape):
        return [Comparison(name, False, float("inf"), f"shape {tuple(ours.shape)} != {tuple(reference.shape)}")]
    finite = torch.isfinite(reference)
    results = [compare_tensors(f"{name} (finite mask)", torch.isfinite(ours), finite)]
    results.append(
        compare_tensors(name, ours, reference, "allclose", float(tol.get("atol", 0)), float(tol.get("rtol", 0)),
                        mask=finite & torch.isfinite(ours))
    )
    return results


def _run_stage(model, layout, prompts, stage: str, settings: dict, do_sample: bool, generator, batched_cfg=True):
    recorder = ScoreRecorder(batch_size=len(prompts))
    if stage == "image":
        start, end, allowed, guidance = (
            layout.image_start_token_id, layout.image_end_token_id, layout.keyframe_allowed_ranges,
            settings["guidance_scale_for_llm"],
        )
        max_new, min_new = settings["image_max_new_tokens"], settings["image_min_new_tokens"]
    else:
        start, end, allowed, guidance = (
            layout.motion_start_token_id, layout.motion_end_token_id, layout.motion_allowed_ranges,
            settings["guidance_scale_for_motion"],
        )
        max_new, min_new = settings["motion_max_new_tokens"], settings["motion_min_new_tokens"]
    contexts, generated, sequences = model._generate_token_stage(
        prompts, start, end, allowed, layout, guidance, do_sample, settings["top_k"], settings["top_p"],
        settings["temperature"], max_new, min_new, generator, batched_cfg, [recorder],
    )
    scores = torch.stack(recorder.scores, dim=1) if recorder.scores else torch.empty(0)
    return contexts, generated, sequences, scores


def _stage_input_ids(layout, prompts, start):
    length = max(p.numel() for p in prompts) + 1
    ids = torch.full((len(prompts), length), layout.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, length - p.numel() - 1 : -1] = p
        ids[i, -1] = start
        mask[i, length - p.numel() - 1 :] = 1
    return ids, mask


def _check_mode(fixture, model, layout, io, prefix, settings, do_sample_image, seed, compare_scores_fn):
    results = []
    tol = fixture.spec["tolerance"]
    n = len([k for k in io if k.startswith("input.prompts.")])
    prompts = [io[f"input.prompts.{i}"] for i in range(n)]
    generator = torch.Generator().manual_seed(seed) if do_sample_image else None

    def exact(key, ours):
        if key in io:
            results.append(compare_tensors(key, ours, io[key]))

    ids, mask = _stage_input_ids(layout, prompts, layout.image_start_token_id)
    exact(f"{prefix}image_stage.generate_input_ids", ids)
    exact(f"{prefix}image_stage.generate_attention_mask", mask)
    contexts, image_ids, sequences, scores = _run_stage(
        model, layout, prompts, "image", settings, do_sample_image, generator
    )
    exact(f"{prefix}image_stage.sequences", sequences)
    results += compare_scores_fn(f"{prefix}image_stage", scores, io, tol)
    for i in range(n):
        exact(f"{prefix}image_stage.output_tokens.{i}", contexts[i])
        exact(f"{prefix}image_stage.pure_image_tokens.{i}", image_ids[i])

    ids, mask = _stage_input_ids(layout, contexts, layout.motion_start_token_id)
    exact(f"{prefix}motion_stage.generate_input_ids", ids)
    exact(f"{prefix}motion_stage.generate_attention_mask", mask)
    contexts, motion_ids, sequences, scores = _run_stage(model, layout, contexts, "motion", settings, False, None)
    exact(f"{prefix}motion_stage.sequences", sequences)
    results += compare_scores_fn(f"{prefix}motion_stage", scores, io, tol)
    for i in range(n):
        exact(f"{prefix}motion_stage.output_tokens.{i}", contexts[i])
        exact(f"{prefix}motion_stage.pure_motion_tokens.{i}", motion_ids[i])
    pruned = torch.stack([layout.prune_motion_ids(m)[0] for m in motion_ids]) - layout.motion_token_offset
    exact(f"{prefix}video_decoding.motion_tokens_prune", pruned)

    # the public API, batched CFG, must give the same ids
    generator = torch.Generator().manual_seed(seed) if do_sample_image else None
    out = model.generate_video_tokens(
        prompts, num_clips=1, guidance_scale_image=settings["guidance_scale_for_llm"],
        guidance_scale_motion=settings["guidance_scale_for_motion"], generator=generator,
        do_sample_image=do_sample_image, do_sample_motion=False, top_k=settings["top_k"], top_p=settings["top_p"],
        temperature=settings["temperature"],
        max_new_tokens=(settings["image_max_new_tokens"], settings["motion_max_new_tokens"]),
        min_new_tokens=(settings["image_min_new_tokens"], settings["motion_min_new_tokens"]), show_progress=False,
        token_layout=layout,
    )
    key = f"{prefix}video_decoding.motion_tokens_prune"
    if key in io:
        results.append(compare_tensors(f"{key} (generate_video_tokens)", out.motion_codes[:, 0], io[key]))
    for i in range(n):
        key = f"{prefix}image_stage.pure_image_tokens.{i}"
        if key in io:
            results.append(compare_tensors(f"{key} (generate_video_tokens)", out.keyframe_token_ids[i][0], io[key]))
        key = f"{prefix}motion_stage.output_tokens.{i}"
        if key in io:
            results.append(compare_tensors(f"{key} (generate_video_tokens)", out.sequences[i], io[key]))
    return results


def check_llm_t2v(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    spec = fixture.spec
    settings = spec["call_settings"]
    io = fixture.tensors()
    llama_config = _llama_config(fixture)
    layout = _layout(spec["token_layout"], settings["motion_token_length"], llama_config["vocab_size"])
    model = build_generation_model(spec, llama_config, fixture.weights(_llama_weights_file(fixture)))

    def full_scores(name, scores, io, tol):
        key = f"{name}.scores"
        return _compare_scores(key, scores, io[key], tol[key]) if key in io else []

    results = []
    for mode in spec["modes"]:
        do_sample = spec["generate_kwargs_recorded"][mode]["image_stage_generate_kwargs"]["do_sample"]
        seed = _sampling_seed(fixture) if do_sample else 0
        results += _check_mode(fixture, model, layout, io, f"output.{mode}.", settings, do_sample, seed, full_scores)
    results += _check_image_codes(fixture, layout, io)
    return results


def _check_image_codes(fixture: Fixture, layout: VideoLavitTokenLayout, io: dict) -> list[Comparison]:
    """``generate_image_embeds``' codebook lookup: codes of the pure keyframe ids, rows cast to bfloat16."""
    results = []
    codebooks = [v for k, v in fixture.weights().items() if k.endswith("quantize.embedding.weight")]
    if len(codebooks) != 1:
        return results
    codebook = codebooks[0]
    tol = fixture.spec["tolerance"]
    for mode in fixture.spec.get("modes", {}):
        prefix = f"output.{mode}."
        pure = [io[k] for k in sorted(k for k in io if k.startswith(f"{prefix}image_stage.pure_image_tokens."))]
        codes = [layout.keyframe_codes(p) for p in pure]
        key = f"{prefix}image_embeds.token_nums"
        if key in io:
            results.append(compare_tensors(key, torch.tensor([c.numel() for c in codes]), io[key]))
        key = f"{prefix}image_embeds.token_quantize_bf16"
        if key in io:
            rows = codebook[torch.cat(codes)].to(torch.bfloat16).float()
            results.append(compare_tensors(key, rows, io[key], "allclose", tol[key]["atol"], tol[key]["rtol"]))
    return results


def check_llm_t2v_fullvocab(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    spec = fixture.spec
    settings = dict(spec["call_settings"])
    io = fixture.tensors()
    llama_config = spec["llama_config"]
    layout = _layout(spec["token_layout"], spec["token_layout"]["motion_tokens_per_clip"], llama_config["vocab_size"])
    model = build_generation_model(spec, llama_config, fixture.weights(_llama_weights_file(fixture)))
    k = io["output.image_stage.scores_top8_values"].shape[-1]

    def top_scores(name, scores, io, tol):
        results = []
        values, indices = scores.topk(k, dim=-1)
        for suffix, ours in (("scores_top8_values", values), ("scores_top8_indices", indices)):
            key = f"{name}.{suffix}"
            if key in io:
                t = tol.get(key, {})
                rule = "exact" if not ours.is_floating_point() else "allclose"
                results.append(compare_tensors(key, ours, io[key], rule, float(t.get("atol", 0)), float(t.get("rtol", 0))))
        key = f"{name}.num_finite_scores"
        if key in io:
            results.append(compare_tensors(key, torch.isfinite(scores).sum(-1), io[key]))
        return results

    do_sample = spec["generate_kwargs_recorded"]["image_stage"]["do_sample"]
    if do_sample:
        raise ValueError(f"fixture {fixture.name}: a sampled image stage is not described by this fixture format")
    return _check_mode(fixture, model, layout, io, "output.", settings, False, 0, top_scores)
