"""Parity of the video detokenizer: motion condition encoder, 3D UNet, the Euler sampler, released keys.

Every size comes from the fixture JSON (constructor kwargs, call kwargs, tensor shapes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..convert_video_detokenizer import (
    MOTION_ENCODER_PREFIX,
    UNET_PREFIX,
    ConversionError,
    _shapes,
    build_detokenizer_modules,
    split_video_detokenizer_state_dict,
)
from ...modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from ...modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
from .common import Comparison, Fixture, check_keys_cover, compare_tensors

# original MotionConditionEncoder kwarg -> our config field
_MOTION_ENCODER_KWARGS = {
    "in_channel": "in_channels",
    "out_channel": "out_channels",
    "dim": "hidden_size",
    "num_heads": "num_attention_heads",
    "img_size": "grid_size",
    "depth": "num_layers",
    "mlp_ratio": "mlp_ratio",
    "qkv_bias": "qkv_bias",
    "qk_scale": "attention_scale",
    "drop": "dropout",
    "attn_drop": "attention_dropout",
    "add_temp_pos": "add_temporal_position_embedding",
    "num_frames": "num_frames",
}


def motion_encoder_config_from_original(kwargs: dict) -> dict:
    unknown = sorted(set(kwargs) - set(_MOTION_ENCODER_KWARGS) - {"norm_layer", "act_layer"})
    if unknown:
        raise ValueError(f"unknown MotionConditionEncoder arguments in the fixture: {unknown}")
    config = {_MOTION_ENCODER_KWARGS[k]: v for k, v in kwargs.items() if k in _MOTION_ENCODER_KWARGS}
    if "grid_size" in config:
        config["grid_size"] = tuple(config["grid_size"])
    return config


def _rule(fixture: Fixture, name: str) -> dict:
    tolerance = fixture.spec.get("tolerance", {}).get(name)
    if tolerance is None:
        return {"rule": "exact"}
    return {"rule": "allclose", "atol": float(tolerance.get("atol", 0.0)), "rtol": float(tolerance.get("rtol", 0.0))}


def _compare(fixture: Fixture, name: str, ours: torch.Tensor) -> Comparison:
    reference = fixture.tensors().get(name)
    if reference is None:
        return Comparison(name, False, float("nan"), "not recorded in the fixture")
    return compare_tensors(name, ours, reference, **_rule(fixture, name))


def _load_motion_encoder(fixture: Fixture):
    """Our motion encoder with the fixture weights, through the real conversion (released `motion_encoder.` prefix)."""
    encoder = VideoLavitMotionConditionEncoder.from_config(
        motion_encoder_config_from_original(fixture.spec["constructor_kwargs"])
    )
    original = {MOTION_ENCODER_PREFIX + k: v for k, v in fixture.weights(fixture.spec["weights_file"]).items()}
    _, encoder_sd = split_video_detokenizer_state_dict(original, {}, _shapes(encoder))
    encoder.load_state_dict(encoder_sd, strict=True)
    return encoder.eval()


def _load_unet(fixture: Fixture):
    """Our UNet with the fixture weights, through the real conversion (released `unet.` prefix)."""
    unet = VideoLavitUNetSpatioTemporalConditionModel.from_config(dict(fixture.spec["constructor_kwargs"]))
    original = {UNET_PREFIX + k: v for k, v in fixture.weights(fixture.spec["weights_file"]).items()}
    unet_sd, _ = split_video_detokenizer_state_dict(original, _shapes(unet), {})
    unet.load_state_dict(unet_sd, strict=True)
    return unet.eval()


def check_motion_condition(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    encoder = _load_motion_encoder(fixture)
    io = fixture.tensors()
    with torch.no_grad():
        resized = encoder.resize_motion(io["input.motion"])
        hidden = encoder(io["input.motion"]).motion_hidden_states
    return [
        _compare(fixture, "intermediate.motion_resized_16x16", resized),
        _compare(fixture, "output.motion_hidden_states", hidden),
    ]


def check_unet3d(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    unet = _load_unet(fixture)
    io = fixture.tensors()
    captured, hooks = {}, []
    for name in io:
        if name.startswith("intermediate."):
            module_name = name[len("intermediate.") :]

            def hook(module, args, output, key=name):
                captured[key] = output[0] if isinstance(output, tuple) else output

            hooks.append(unet.get_submodule(module_name).register_forward_hook(hook))
    with torch.no_grad():
        out = unet(
            io["input.sample"],
            io["input.timestep"],
            encoder_hidden_states=io["input.encoder_hidden_states"],
            added_time_ids=io["input.added_time_ids"],
            return_dict=False,
        )[0]
    for h in hooks:
        h.remove()
    results = [_compare(fixture, "output.sample", out)]
    results += [_compare(fixture, name, captured[name]) for name in sorted(captured)]
    if len(captured) != sum(n.startswith("intermediate.") for n in io):
        results.append(Comparison("intermediates captured", False, float("nan"), f"captured {sorted(captured)}"))
    return results


def build_sampling_pipeline(fixture: Fixture):
    """`VideoLavitReconstructionPipeline` with the fixture's tiny UNet, motion encoder, temporal VAE and scheduler."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

    from ...pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

    spec = fixture.spec
    # the sampler fixture reuses the weights of the two module fixtures recorded next to it
    encoder = _load_motion_encoder(Fixture.load(fixture.directory / "motion_condition.json"))
    unet = _load_unet(Fixture.load(fixture.directory / "unet3d.json"))
    vae = AutoencoderKLTemporalDecoder(**spec["vae_constructor_kwargs"])
    vae_prefix = "vae."
    weights = fixture.weights(spec["weights_file"])
    unmapped = sorted(k for k in weights if not k.startswith(vae_prefix))
    if unmapped:
        raise ValueError(f"unexpected keys in {spec['weights_file']}: {unmapped[:10]}")
    vae.load_state_dict({k[len(vae_prefix) :]: v for k, v in weights.items()}, strict=True)
    scheduler = EulerDiscreteScheduler.from_config(spec["scheduler_config"])
    pipe = VideoLavitReconstructionPipeline(vae=vae.eval(), unet=unet, scheduler=scheduler, motion_encoder=encoder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_video_detok_sampling(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    spec, io = fixture.spec, fixture.tensors()
    kwargs = spec["call_kwargs"]
    if kwargs.get("decode_from_token") or kwargs.get("quantize_motion") or not kwargs.get("cond_on_ref_frame", True):
        raise ValueError(f"the fixture's call mode is not covered by this check: {kwargs}")
    pipe = build_sampling_pipeline(fixture)

    recorded: dict[str, list] = {"unet_input": [], "unet_timestep": [], "unet_output": [], "context": [], "time_ids": []}

    def unet_hook(module, args, call_kwargs, output):
        recorded["unet_input"].append(args[0])
        recorded["unet_timestep"].append(torch.as_tensor(args[1]).reshape(-1))
        recorded["context"].append(call_kwargs["encoder_hidden_states"])
        recorded["time_ids"].append(call_kwargs["added_time_ids"])
        recorded["unet_output"].append(output[0])

    steps: list[dict] = []

    def on_step_end(pipeline, i, t, tensors):
        steps.append({k: v.clone() for k, v in tensors.items()})
        return {}

    handle = pipe.unet.register_forward_hook(unet_hook, with_kwargs=True)
    try:
        frames = pipe(
            image=(io["input.image"] + 1) / 2,  # diffusers' tensor convention is [0, 1]
            motion=io["input.motion"],
            height=kwargs["height"],
            width=kwargs["width"],
            num_frames=kwargs["num_frames"],
            num_inference_steps=kwargs["num_inference_steps"],
            min_guidance_scale=kwargs["min_guidance_scale"],
            max_guidance_scale=kwargs["max_guidance_scale"],
            linear_guidance=kwargs["use_linear_guidance"],
            fps=kwargs["fps"],
            motion_bucket_id=kwargs["motion_bucket_id"],
            noise_aug_strength=kwargs["noise_aug_strength"],
            decode_chunk_size=kwargs["decode_chunk_size"],
            keyframe_noise=io["input.random.image_noise"],
            latents=io["input.random.initial_latents"],
            output_type="np",
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=["latents", "noise_pred"],
        ).frames
    finally:
        handle.remove()

    overall = {
        "intermediate.scheduler_timesteps": pipe.scheduler.timesteps,
        "intermediate.scheduler_sigmas": pipe.scheduler.sigmas,
        "intermediate.guidance_scale": pipe.guidance_scale,
        "intermediate.motion_conditions_cfg": recorded["context"][0],
        "intermediate.added_time_ids_cfg": recorded["time_ids"][0],
    }
    # a constant guidance scale is a float, recorded only when the fixture ran the linear ramp
    results = [_compare(fixture, name, torch.as_tensor(ours)) for name, ours in overall.items() if name in io]
    n_steps = sum(1 for name in io if name.endswith(".unet_output"))
    if len(steps) != n_steps:
        results.append(Comparison("number of steps", False, abs(len(steps) - n_steps), f"ran {len(steps)}, recorded {n_steps}"))
    for k in range(min(n_steps, len(steps))):
        results += [
            _compare(fixture, f"intermediate.step{k}.unet_input", recorded["unet_input"][k]),
            _compare(fixture, f"intermediate.step{k}.unet_timestep", recorded["unet_timestep"][k]),
            _compare(fixture, f"intermediate.step{k}.unet_output", recorded["unet_output"][k]),
            _compare(fixture, f"intermediate.step{k}.guided_model_output", steps[k]["noise_pred"]),
            _compare(fixture, f"intermediate.step{k}.latents_after", steps[k]["latents"]),
        ]
    final_latents = steps[-1]["latents"]
    results.append(_compare(fixture, "output.latents", final_latents))
    with torch.no_grad():
        frames_float = pipe.decode_latents(final_latents, kwargs["num_frames"], kwargs["decode_chunk_size"])
    results.append(_compare(fixture, "output.frames_float", frames_float))
    frames_uint8 = torch.from_numpy((np.asarray(frames) * 255).round().astype(np.uint8))
    reference = io["output.frames_uint8"]
    atol = float(spec.get("tolerance", {}).get("output.frames_uint8", {}).get("atol", 0))
    results.append(compare_tensors("output.frames_uint8", frames_uint8.float(), reference.float(), "allclose", atol, 0.0))
    return results


def check_released_video_detokenizer(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]:
    """Released `video_3d_unet.bin` key list -> our default-config UNet and motion encoder on the meta device,
    through the real conversion; also with the UNet keys unprefixed, and a missing motion encoder must fail."""
    unet, encoder = build_detokenizer_modules(meta=True)
    meta_sd = {k: torch.empty(shape, device="meta") for k, shape in keys.items()}
    ours = {**{UNET_PREFIX + k: v for k, v in _shapes(unet).items()}, **{MOTION_ENCODER_PREFIX + k: v for k, v in _shapes(encoder).items()}}

    def mapped(state_dict):
        unet_sd, encoder_sd = split_video_detokenizer_state_dict(state_dict, _shapes(unet), _shapes(encoder))
        return {
            **{UNET_PREFIX + k: tuple(v.shape) for k, v in unet_sd.items()},
            **{MOTION_ENCODER_PREFIX + k: tuple(v.shape) for k, v in encoder_sd.items()},
        }

    unprefixed = {(k[len(UNET_PREFIX) :] if k.startswith(UNET_PREFIX) else k): v for k, v in meta_sd.items()}
    results = []
    for label, state_dict in (("video_detokenizer", meta_sd), ("video_detokenizer (UNet keys unprefixed)", unprefixed)):
        try:
            results += check_keys_cover(label, mapped(state_dict), ours)
        except ConversionError as error:
            results.append(Comparison(f"{label}: conversion", False, float("nan"), str(error)))
    try:
        split_video_detokenizer_state_dict(
            {k: v for k, v in meta_sd.items() if not k.startswith(MOTION_ENCODER_PREFIX)}, _shapes(unet), _shapes(encoder)
        )
        results.append(Comparison("missing motion encoder is rejected", False, 1.0, "conversion accepted it"))
    except ConversionError:
        results.append(Comparison("missing motion encoder is rejected", True))
    n_params = sum(int(np.prod(s)) for s in keys.values())
    expected = info.get("num_parameters")
    if expected is not None:
        results.append(Comparison("parameter count", n_params == expected, abs(n_params - expected), f"{n_params} vs {expected}"))
    return results
