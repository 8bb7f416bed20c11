"""Parity of the keyframe decoder (original `HighresVQDecoder`) and of its released key layout."""

from __future__ import annotations

from pathlib import Path

import torch

from ...modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from ..convert_keyframe_decoder import CODEBOOK_KEY, convert_keyframe_decoder_state_dict, load_converted_state_dict
from .common import Comparison, Fixture, check_keys_cover, compare_by_spec, compare_tensors


def _config_from_fixture(spec: dict, codebook_size: int) -> dict:
    """Our config from a fixture's constructor kwargs plus the tail widths the fixture shrank after construction.

    Two fixture layouts exist: `post_construction_resize.tiny` (with the pooler's own head count) and
    `tail_dims` (the pooler uses the constructor's head count, as `HighresVQDecoder` builds it)."""
    kwargs = spec["constructor_kwargs"]
    if kwargs.get("qk_scale") is not None:
        raise ValueError(f"fixture uses qk_scale={kwargs['qk_scale']}; only the default head_dim**-0.5 is supported")
    if kwargs["img_size"] % kwargs["patch_size"]:
        raise ValueError(f"img_size {kwargs['img_size']} is not a multiple of patch_size {kwargs['patch_size']}")
    hidden = kwargs["embed_dim"]
    num_queries = (kwargs["img_size"] // kwargs["patch_size"]) ** 2
    if "post_construction_resize" in spec:
        tiny = spec["post_construction_resize"]["tiny"]
        feature_dim = tiny["decoder_out_dim"]
        prompt_dims = (tiny["unet_proj_1"][1], tiny["unet_proj_2"][1])
        pool = tiny["unet_attnpool"]
        if pool["seq_len"] != num_queries or pool["embed_dim"] != feature_dim:
            raise ValueError(f"fixture pooler {pool} does not match {num_queries} queries of width {feature_dim}")
        pooled_dim, pooler_heads = pool["output_dim"], pool["num_heads"]
    else:
        tail = spec["tail_dims"]
        feature_dim = tail["decoder_out_dim"]
        prompt_dims = (tail["unet_proj_1_out"], tail["unet_proj_2_out"])
        pooled_dim, pooler_heads = tail["unet_proj_2_out"], kwargs["num_heads"]
    return dict(
        codebook_size=codebook_size,
        code_dim=kwargs["in_chans"],
        hidden_size=hidden,
        num_hidden_layers=kwargs["depth"],
        num_attention_heads=kwargs["num_heads"],
        intermediate_size=int(hidden * kwargs.get("mlp_ratio", 4.3637)),
        num_queries=num_queries,
        qkv_bias=kwargs.get("qkv_bias", True),
        feature_dim=feature_dim,
        prompt_embed_dims=prompt_dims,
        pooled_embed_dim=pooled_dim,
        pooler_num_heads=pooler_heads,
    )


def _build(fixture: Fixture, codebook: torch.Tensor) -> VideoLavitKeyframeDecoder:
    config = _config_from_fixture(fixture.spec, codebook.shape[0])
    model = VideoLavitKeyframeDecoder(**config).eval()
    load_converted_state_dict(model, convert_keyframe_decoder_state_dict(fixture.weights(), codebook.float()))
    return model


def _capture(model: VideoLavitKeyframeDecoder) -> tuple[dict, list]:
    """Forward hooks recording the module outputs the fixtures hold as intermediates."""
    captured = {}
    modules = {"in_proj": model.code_proj, "norm": model.norm, "decode_task_layer": model.feature_head}
    modules.update({f"blocks.{i}": layer for i, layer in enumerate(model.layers)})

    def hook(name):
        def record(_module, _inputs, output):
            captured[name] = output.detach()

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    return captured, handles


def _compare(fixture: Fixture, key: str, ours: torch.Tensor, reference: torch.Tensor) -> Comparison:
    """Compare under the fixture's rule for `key`: per-tensor specs under `io.tensors`, or a `tolerance` table."""
    spec = fixture.spec.get("io", {}).get("tensors", {}).get(key)
    if spec is not None:
        return compare_by_spec(key, ours, reference, spec)
    tol = fixture.spec.get("tolerance", {}).get(key)
    if tol is None:
        raise ValueError(f"fixture {fixture.name} gives no comparison rule for {key}")
    return compare_tensors(key, ours, reference, "allclose", float(tol["atol"]), float(tol["rtol"]))


def _check_decoder_fixture(fixture: Fixture) -> list[Comparison]:
    """Run the decoder on whatever input form the fixture recorded and compare every recorded output.

    * `input.image_token_ids` (+ `input.image_token_nums_with_special`): LLM ids -> codes through the pipeline's
      id handling -> our codebook (taken from the `visual_tokenizer.safetensors` fixture beside it) -> decoder;
    * otherwise the recorded codebook vectors (`input.token_quantize` or `input.token_embeddings`, packed, with
      `input.token_nums`) go in as `code_embeddings`, and the codebook is unused.
    """
    from ...pipelines.pipeline_video_lavit_keyframe import image_token_ids_to_codes

    io = fixture.tensors()
    vectors = io.get("input.token_quantize", io.get("input.token_embeddings"))
    results = []
    tokenizer_weights = fixture.directory / "visual_tokenizer.safetensors"
    if "input.image_token_ids" in io and tokenizer_weights.is_file():
        codebook = fixture.weights(tokenizer_weights.name)[CODEBOOK_KEY]
        per_image = list(io["input.image_token_ids"].split(io["input.image_token_nums_with_special"].tolist()))
        codes = image_token_ids_to_codes(per_image, codebook_size=codebook.shape[0])
        model = _build(fixture, codebook)
        if "input.token_nums" in io:
            results.append(compare_tensors("token_nums", torch.tensor([len(c) for c in codes]), io["input.token_nums"]))
        if vectors is not None:
            results.append(compare_tensors("codebook lookup", model.codebook(torch.cat(codes)), vectors))
        inputs = {"codes": codes}
    else:
        if vectors is None:
            raise ValueError(f"fixture {fixture.name} records neither LLM ids with a codebook nor code vectors")
        model = _build(fixture, torch.zeros(1, vectors.shape[1]))
        inputs = {"code_embeddings": list(vectors.split(io["input.token_nums"].tolist()))}

    captured, handles = _capture(model)
    try:
        with torch.no_grad():
            out = model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    _, mask = model.pad_code_embeddings(**inputs)
    captured["in_proj"] = captured["in_proj"][mask.bool()]  # the original records it packed, before padding
    for name, value in captured.items():
        if f"intermediate.{name}" in io:
            results.append(_compare(fixture, f"intermediate.{name}", value, io[f"intermediate.{name}"]))
    for name in ("prompt_embeds", "pooled_prompt_embeds"):
        results.append(_compare(fixture, f"output.{name}", getattr(out, name), io[f"output.{name}"]))
    return results


def check_visual_tokenizer_decoder(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    """LLM ids (with [IMG]/[/IMG]) -> codes -> codebook lookup -> decoder, with every intermediate."""
    return _check_decoder_fixture(fixture)


def check_keyframe_decoder(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    """Codebook vectors (packed, with per-image counts) -> decoder; the fixture carries no codebook."""
    return _check_decoder_fixture(fixture)


def check_released_highres_decoder(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    """Full-size decoder from the default config on the meta device, fed a meta state dict with exactly the
    released keys through the real conversion. The codebook comes from another file
    (`visual_tokenizer/tokenizer_encoder.bin`, `quantize.embedding.weight`), so a meta codebook of the config's
    shape stands in for it."""
    with torch.device("meta"):
        model = VideoLavitKeyframeDecoder()
        original = {name: torch.empty(shape) for name, shape in keys.items()}
        codebook = torch.empty(model.config.codebook_size, model.config.code_dim)
    converted = convert_keyframe_decoder_state_dict(original, codebook)
    mapped = {k: tuple(v.shape) for k, v in converted.items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    results = check_keys_cover("highres_tokenizer_decoder", mapped, ours)

    released_params = sum(torch.Size(shape).numel() for shape in keys.values())
    expected = info.get("num_parameters")
    if expected is not None:
        results.append(
            Comparison("released parameter count", released_params == expected, abs(released_params - expected),
                       f"{released_params} vs {expected}")
        )
    our_params = sum(p.numel() for p in model.parameters()) - model.codebook.weight.numel()
    results.append(
        Comparison("our parameter count (without codebook)", our_params == released_params,
                   abs(our_params - released_params), f"{our_params} vs {released_params}")
    )
    return results
