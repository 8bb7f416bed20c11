"""Parity of :class:`VideoLavitMotionTokenizer` with the original ``MotionTransformerTokenizer``.

``check_motion_tokenizer`` builds our model from the fixture's recorded constructor arguments, loads the recorded
original weights through the real conversion function and replays the fixture protocol (``get_tokens``,
``decode``, ``reconstruct_from_token``, the LLM-id glue), plus the per-stage intermediates of the ``_debug`` file.
``check_released_motion_tokenizer`` converts a meta state dict with the released key list at full size.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from ...modeling.modeling_motion_tokenizer import (
    MOTION_END_TOKEN_ID,
    MOTION_START_TOKEN_ID,
    MOTION_TOKEN_OFFSET,
    VideoLavitMotionTokenizer,
    motion_ids_to_llm_ids,
)
from ..convert_motion_tokenizer import SFT_PREFIX, convert_motion_tokenizer_state_dict, expected_state_dict_shapes
from .common import Comparison, Fixture, check_keys_cover, compare_by_spec


def _layer_norm_eps(norm_layer: str | None, default: float) -> float:
    match = re.search(r"eps\s*=\s*([0-9.eE+-]+)", norm_layer or "")
    return float(match.group(1)) if match else default


def config_from_original_kwargs(
    constructor_kwargs: dict, fixed_in_code: dict | None = None, motion_shape: tuple[int, ...] | None = None
) -> VideoLavitMotionTokenizerConfig:
    """Our config from the original ``MotionTransformerTokenizer(encoder_config, decoder_config, decoder_out_dim,
    n_embed, embed_dim)`` arguments. ``fixed_in_code`` (the fixture's description of the values hard-coded in the
    original: sampling schedule, scale factor) overrides our defaults; ``motion_shape`` `(B, C, T, H, W)` fixes
    the grid orientation (the original's ``img_size`` only fixes H*W)."""
    enc, dec = constructor_kwargs["encoder_config"], constructor_kwargs["decoder_config"]
    for key in ("dim", "num_heads", "depth", "mlp_ratio", "qkv_bias", "num_frames"):
        if enc.get(key) != dec.get(key):
            raise ValueError(f"encoder and decoder differ in {key!r} ({enc.get(key)} vs {dec.get(key)}); unsupported")
    if enc.get("qk_scale") is not None:
        raise ValueError(f"qk_scale={enc['qk_scale']} is not supported (the released model uses head_dim**-0.5)")
    if dec["in_channel"] != constructor_kwargs["embed_dim"]:
        raise ValueError(f"decoder in_channel {dec['in_channel']} != embed_dim {constructor_kwargs['embed_dim']}")
    fixed = fixed_in_code or {}
    defaults = VideoLavitMotionTokenizerConfig()
    down = fixed.get("encoder downsample", {})
    strides = down.get("stride(t,h,w)", defaults.downsample_strides)
    paddings = down.get("F.pad (w_l,w_r,h_t,h_b,t_f,t_b)", defaults.downsample_paddings)
    kernels = down.get("kernel", [[defaults.downsample_kernel_size] * 3] * len(strides))
    if len({k for kernel in kernels for k in kernel}) != 1:
        raise ValueError(f"only cubic down-sampling kernels are supported, got {kernels}")
    scales = fixed.get("decoder upsample", {}).get("scale_factor(t,h,w)", defaults.upsample_scale_factors)
    n_stages = len(strides)
    if enc["depth"] % n_stages:
        raise ValueError(f"depth {enc['depth']} does not split into {n_stages} equal stages")
    blocks = [enc["depth"] // n_stages] * n_stages
    width, height = enc["img_size"]
    if motion_shape is not None:
        if motion_shape[3] * motion_shape[4] != width * height:
            raise ValueError(f"motion input {tuple(motion_shape)} does not match img_size {enc['img_size']}")
        height, width = motion_shape[3], motion_shape[4]
    act = str(enc.get("act_layer", "GELU"))
    if "GELU" not in act:
        raise ValueError(f"unsupported activation {act!r}")
    return VideoLavitMotionTokenizerConfig(
        in_channels=enc["in_channel"],
        out_channels=constructor_kwargs["decoder_out_dim"],
        num_frames=enc["num_frames"],
        height=height,
        width=width,
        hidden_size=enc["dim"],
        num_attention_heads=enc["num_heads"],
        mlp_ratio=float(enc["mlp_ratio"]),
        qkv_bias=bool(enc["qkv_bias"]),
        layer_norm_eps=_layer_norm_eps(enc.get("norm_layer"), defaults.layer_norm_eps),
        encoder_blocks_per_stage=blocks,
        decoder_blocks_per_stage=list(blocks),
        downsample_strides=[list(map(int, s)) for s in strides],
        downsample_paddings=[list(map(int, p)) for p in paddings],
        upsample_scale_factors=[[int(round(float(f))) for f in s] for s in scales],
        downsample_kernel_size=int(kernels[0][0]),
        codebook_size=constructor_kwargs["n_embed"],
        code_dim=constructor_kwargs["embed_dim"],
        motion_scale_factor=float(fixed.get("motion_scale_factor", defaults.motion_scale_factor)),
    )


def _fullsize(spec: dict) -> dict:
    return spec.get("fullsize", {}).get("MotionTransformerTokenizer", {})


def build_from_fixture(fixture: Fixture) -> VideoLavitMotionTokenizer:
    """Our model, configured from the fixture JSON, with the fixture's original weights converted and loaded."""
    spec = fixture.spec
    io = fixture.tensors()
    config = config_from_original_kwargs(
        spec["constructor_kwargs"], _fullsize(spec).get("fixed_in_code"), tuple(io["input.motion"].shape)
    )
    model = VideoLavitMotionTokenizer(config).eval()
    converted = convert_motion_tokenizer_state_dict(fixture.weights(), "", config)
    model.load_state_dict(converted, strict=True)
    return model


def check_motion_tokenizer(fixture: Fixture, media_dir: Path | None = None) -> list[Comparison]:
    spec = fixture.spec
    tensors_spec = spec["io"]["tensors"]
    io = fixture.tensors()
    model = build_from_fixture(fixture)
    motion = io["input.motion"]
    results = []

    def compare(name, ours, reference=None, spec_entry=None):
        reference = io[name] if reference is None else reference
        results.append(compare_by_spec(name, ours, reference, spec_entry or tensors_spec[name]))

    debug_spec = spec.get("debug", {})
    debug_io = fixture.tensors(debug_spec["file"]) if debug_spec.get("file") else {}
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for i, layer in enumerate(model.encoder.downsamplers):
        hooks.append(layer.register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(f"encoder.stage{i}", out)))
    ends = torch.tensor(model.config.decoder_blocks_per_stage).cumsum(0) - 1
    for stage, index in enumerate(ends.tolist()):
        hooks.append(
            model.decoder.layers[index].register_forward_hook(
                lambda m, a, out, s=stage: captured.__setitem__(f"decoder.stage{s}", out)
            )
        )

    with torch.no_grad():
        n_frames_ip = io["intermediate.encoder.in_proj"].shape[1] if "intermediate.encoder.in_proj" in io else 0
        if n_frames_ip:
            first = motion[:1, :, :n_frames_ip].permute(0, 2, 3, 4, 1)
            compare("intermediate.encoder.in_proj", model.encoder.in_proj(first))
        encoded = model.quantize(motion)
        for i in range(len(model.encoder.downsamplers)):
            name = f"intermediate.encoder.stage{i}"
            if name in debug_io:
                ref = debug_io[name]
                compare(name, captured[f"encoder.stage{i}"][: ref.shape[0]], ref, debug_spec["tensors"][name])
        compare("intermediate.encoder_features", encoded.last_hidden_state)
        compare("intermediate.to_quantizer_features", encoded.latents)
        compare("output.tokens", encoded.token_ids)
        mismatched = encoded.token_ids != io["output.tokens"]
        if bool(mismatched.any()) and "intermediate.quant_margin" in io:
            margins = io["intermediate.quant_margin"].reshape(mismatched.shape)[mismatched]
            results[-1].detail += f" (reference margins at mismatches: max {float(margins.max()):.3g})"
        compare("output.quantize", encoded.quantized)

        captured.clear()
        reference_quantize = io["output.quantize"]
        decoded = model.decode_latents(reference_quantize)
        compare("output.decoded_motion", decoded)
        for i in range(len(model.decoder.layers)):
            name = f"intermediate.decoder.stage{i}"
            if name in debug_io and f"decoder.stage{i}" in captured:
                ref = debug_io[name]
                compare(name, captured[f"decoder.stage{i}"][: ref.shape[0]], ref, debug_spec["tensors"][name])
        if "output.decoder_features" in io:
            ref = io["output.decoder_features"]
            features = model.decoder(reference_quantize)
            compare("output.decoder_features", features[: ref.shape[0], : ref.shape[1]])
        # decoding from ids must equal decoding from the looked-up code vectors
        results.append(
            compare_by_spec(
                "decode(ids) == decode_latents(quantize)", model.decode(encoded.token_ids),
                model.decode_latents(encoded.quantized), {"compare": "allclose", "atol": 1e-6, "rtol": 0},
            )
        )

        ref = io["output.reconstruct_from_token"]
        recon = model.reconstruct(io["input.token_ids_for_reconstruct"], size=tuple(ref.shape[-2:]))
        compare("output.reconstruct_from_token", recon)

        if "output.llm_ids" in io:
            mapping = _fullsize(spec).get("llm_id_mapping", {}) or spec.get("fullsize", {}).get("llm_id_mapping", {})
            llm = motion_ids_to_llm_ids(
                encoded.token_ids,
                offset=mapping.get("motion_code_offset", MOTION_TOKEN_OFFSET),
                start_token_id=mapping.get("motion_start_id", MOTION_START_TOKEN_ID),
                end_token_id=mapping.get("motion_end_id", MOTION_END_TOKEN_ID),
            )
            compare("output.llm_ids", llm)
    for hook in hooks:
        hook.remove()
    return results


def check_released_motion_tokenizer(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    """Convert a meta state dict holding exactly the released keys/shapes (``motion_tokenizer.bin``, or the
    ``model.motion_tokenizer.*`` slice of the SFT checkpoint) and check it fills our default-config model."""
    prefix = SFT_PREFIX if any(k.startswith(SFT_PREFIX) for k in keys) else ""
    original = {k: torch.empty(shape, device="meta") for k, shape in keys.items() if k.startswith(prefix)}
    config = VideoLavitMotionTokenizerConfig()
    converted = convert_motion_tokenizer_state_dict(original, prefix, config)
    ours = expected_state_dict_shapes(config)
    results = check_keys_cover("motion_tokenizer", {k: tuple(v.shape) for k, v in converted.items()}, ours)
    n_params = sum(v.numel() for v in original.values())
    expected = info.get("num_parameters")
    if expected is not None and not prefix:
        results.append(Comparison("parameter count", n_params == expected, abs(n_params - expected), f"{n_params}"))
    return results
