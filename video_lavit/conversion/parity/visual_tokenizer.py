"""Parity of `VideoLavitVisualTokenizer` with the original `DynamicVisualTokenizer` and its released keys."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
from ...modeling.modeling_visual_tokenizer import VideoLavitVisualTokenizer, sample_keep_decision
from .. import convert_visual_tokenizer as conv
from .common import Comparison, Fixture, check_keys_cover, compare_by_spec


def config_from_fixture(spec: dict, weights: dict[str, torch.Tensor]) -> VideoLavitVisualTokenizerConfig:
    """Our config from the fixture's constructor kwargs and the EVA builder's vision config."""
    kwargs = spec["constructor_kwargs"]
    builder = spec["encoder_builder"]
    vision = builder["vision_cfg"]
    derived = builder.get("derived", {})
    width = int(vision["width"])
    if width != int(kwargs["width"]):
        raise ValueError(f"EVA width {width} differs from tokenizer width {kwargs['width']}")
    if int(vision["image_size"]) != int(kwargs["img_size"]) or int(vision["patch_size"]) != int(kwargs["patch_size"]):
        raise ValueError("EVA image/patch size differs from the tokenizer's")
    merger_hidden = spec.get("derived_tiny", {}).get("merger_mlp_hidden", int(width * 4.3637))
    norm = re.search(r"eps=([0-9.eE+-]+)", str(derived.get("norm", "")))
    return VideoLavitVisualTokenizerConfig(
        image_size=int(kwargs["img_size"]),
        patch_size=int(kwargs["patch_size"]),
        hidden_size=width,
        num_hidden_layers=int(vision["layers"]),
        num_attention_heads=width // int(vision["head_width"]),
        intermediate_size=int(derived.get("mlp_hidden", int(width * float(vision["mlp_ratio"])))),
        layer_norm_eps=float(norm.group(1)) if norm else 1e-6,
        clip_projection_dim=int(builder["embed_dim"]),
        merger_num_hidden_layers=int(kwargs["layers"]),
        merger_num_attention_heads=int(kwargs["heads"]),
        merger_intermediate_size=int(merger_hidden),
        codebook_size=int(kwargs["n_code"]),
        code_dim=int(kwargs["code_dim"]),
        # the original hard-codes the LLM width; the weights say what it was
        projection_dim=int(weights["vit_proj.weight"].shape[0]),
    )


def build_from_fixture(fixture: Fixture) -> VideoLavitVisualTokenizer:
    weights = fixture.weights()
    config = config_from_fixture(fixture.spec, weights)
    model = VideoLavitVisualTokenizer(config)
    converted = conv.convert_state_dict(weights, f"fixture {fixture.name}")
    conv.check_complete(converted, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    model.load_state_dict(converted, strict=True)
    return model.eval().float()


def check_visual_tokenizer(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    io = fixture.tensors()
    specs = fixture.spec["io"]["tensors"]
    model = build_from_fixture(fixture)
    images = io["input.images"]
    noise = io["intermediate.gumbel_noise"]
    results: list[Comparison] = []

    def compare(name: str, ours: torch.Tensor, key: str | None = None) -> None:
        key = key or name
        if key in io:
            results.append(compare_by_spec(name, ours, io[key], specs.get(key, {})))

    captured = {}
    hooks = [
        model.vision_model.embeddings.patch_embedding.register_forward_hook(
            lambda m, i, o: captured.__setitem__("patch_embed", o.flatten(2).transpose(1, 2))
        )
    ]
    for index, layer in enumerate(model.vision_model.layers):
        hooks.append(layer.register_forward_hook(lambda m, i, o, n=index: captured.__setitem__(f"blocks.{n}", o)))

    with torch.no_grad():
        out = model.tokenize(images, gumbel_noise=noise)
        for hook in hooks:
            hook.remove()
        compare("intermediate.encoder.patch_embed", captured["patch_embed"])
        for name, value in captured.items():
            if name.startswith("blocks."):
                compare(f"intermediate.encoder.{name}", value)
        compare("intermediate.encoder_features", model.vision_model(images))
        compare("intermediate.pred_score", out.selector_log_probs)
        policy, _ = sample_keep_decision(out.selector_log_probs, gumbel_noise=noise)
        compare("intermediate.hard_keep_decision", policy)
        compare("intermediate.merged_features", out.merged_features)
        kept = out.merged_features[out.keep_mask]
        compare("intermediate.to_quantizer_features", model.code_projection(kept))
        compare("output.keep_mask", out.keep_mask)
        compare("output.token_nums", out.num_tokens)
        compare("output.codes", torch.cat(out.token_ids))
        compare("output.quantize", torch.cat(out.quantized))
        compare("output.llm_ids", torch.cat(model.codes_to_llm_ids(out.token_ids, add_special=False)))
        compare(
            "output.llm_ids_with_special", torch.cat(model.codes_to_llm_ids(out.token_ids, add_special=True))
        )
        features = model.encode_features(images, gumbel_noise=noise)
        compare("output.understanding_features", torch.cat(features))
        compare("output.understanding_token_nums", torch.tensor([f.shape[0] for f in features]))

        # the original draws its noise from the global RNG right after the protocol's manual_seed
        seed = _protocol_seed(fixture.spec)
        if seed is not None:
            torch.manual_seed(seed)
            drawn = model.tokenize(images)
            results.append(
                compare_by_spec("global-RNG draw: keep_mask", drawn.keep_mask, io["output.keep_mask"], {})
            )

        variant = model.tokenize(images, deterministic=True)
        compare("variant_argmax.keep_mask", variant.keep_mask)
        compare("variant_argmax.token_nums", variant.num_tokens)
        compare("variant_argmax.codes", torch.cat(variant.token_ids))
        compare("variant_argmax.quantize", torch.cat(variant.quantized))
        compare(
            "variant_argmax.llm_ids_with_special",
            torch.cat(model.codes_to_llm_ids(variant.token_ids, add_special=True)),
        )
        compare("variant_argmax.understanding_features", torch.cat(model.encode_features(images, deterministic=True)))

    expected = {k for k, v in specs.items() if v.get("compare") in ("exact", "allclose")}
    compared = {r.name for r in results}
    not_compared = sorted(expected - compared)
    results.append(Comparison("every exact/allclose tensor compared", not not_compared, len(not_compared), str(not_compared)))
    return results


def _protocol_seed(spec: dict) -> int | None:
    for line in spec.get("protocol", []):
        match = re.search(r"manual_seed\((\d+)\)", line)
        if match:
            return int(match.group(1))
    return None


# --------------------------------------------------------------------------------------- released keys
def _meta_keys(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {name: torch.empty(shape, device="meta") for name, shape in keys.items()}


def _our_shapes(prefixes: tuple[str, ...] | None = None) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = VideoLavitVisualTokenizer(VideoLavitVisualTokenizerConfig())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if prefixes is None:
        return shapes
    return {k: v for k, v in shapes.items() if k.startswith(prefixes)}


def _mapped_shapes(converted: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in converted.items()}


def check_released_eva(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    converted = conv.convert_eva_state_dict(_meta_keys(keys))
    return check_keys_cover("eva_vitg_psz14", _mapped_shapes(converted), _our_shapes(conv.EVA_PREFIXES))


def check_released_tokenizer_encoder(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    converted = conv.convert_tokenizer_encoder_state_dict(_meta_keys(keys))
    prefixes = conv.TOKENIZER_ENCODER_PREFIXES
    if any(k.startswith(conv.VIT_PROJ_PREFIXES) for k in converted):  # the file may or may not carry vit_proj
        prefixes = prefixes + conv.VIT_PROJ_PREFIXES
    return check_keys_cover("tokenizer_encoder", _mapped_shapes(converted), _our_shapes(prefixes))


def check_released_vit_proj(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    converted = conv.convert_vit_proj_state_dict(_meta_keys(keys))
    results = check_keys_cover("vit_proj", _mapped_shapes(converted), _our_shapes(conv.VIT_PROJ_PREFIXES))
    # the three released files together must fill the whole model
    all_ours = _our_shapes()
    groups = conv.EVA_PREFIXES + conv.TOKENIZER_ENCODER_PREFIXES + conv.VIT_PROJ_PREFIXES
    orphans = sorted(k for k in all_ours if not k.startswith(groups))
    results.append(Comparison("vit_proj: released files cover every parameter", not orphans, len(orphans), str(orphans[:10])))
    return results
