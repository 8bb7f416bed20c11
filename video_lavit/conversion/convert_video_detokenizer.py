"""Convert the released Video-LaVIT video detokenizer to a `VideoLavitReconstructionPipeline` folder.

Inputs (from `rain1011/Video-LaVIT-v1`):

* `video_3d_unet.bin` or `video_detokenizer/unet/diffusion_pytorch_model.bin`: the 3D UNet (keys with or
  without a `unet.` prefix) plus the motion condition encoder (`motion_encoder.*`). The original loads this file
  with `strict=False`, which would hide a missing motion encoder; here every key must be accounted for.
* `video_detokenizer/unet/config.json`, `video_detokenizer/vae/`, `video_detokenizer/scheduler/`.
* optionally a converted motion tokenizer folder (to decode motion token ids inside the pipeline).

Usage::

    python -m video_lavit.conversion.convert_video_detokenizer --checkpoint-dir Video-LaVIT-v1 --output-dir out \
        [--weights video_3d_unet.bin] [--motion-tokenizer converted/motion_tokenizer] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import torch

from ._utils import load_weights_file, state_dict_mismatches

UNET_PREFIX = "unet."
MOTION_ENCODER_PREFIX = "motion_encoder."

# The scheduler the released folder ships is 494 bytes and was not readable offline; these are SVD's EDM
# settings, used only when the folder has no scheduler config.
SVD_SCHEDULER_CONFIG = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}


class ConversionError(ValueError):
    """A checkpoint does not map one-to-one onto our modules."""


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def split_video_detokenizer_state_dict(
    state_dict: dict[str, torch.Tensor],
    unet_shapes: dict[str, tuple[int, ...]],
    motion_encoder_shapes: dict[str, tuple[int, ...]],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Route an original detokenizer state dict to `(unet_state_dict, motion_encoder_state_dict)`.

    UNet keys may carry the `unet.` prefix or none (the original ships both layouts); motion encoder keys carry
    `motion_encoder.`. Raises `ConversionError` listing unmapped keys, keys given twice, missing keys (each part
    separately, so a checkpoint without the motion encoder fails) and shape mismatches. Works with tensors on
    the meta device (no tensor data is touched).
    """
    unet, encoder, unmapped, duplicated = {}, {}, [], []
    for key, tensor in state_dict.items():
        if key.startswith(MOTION_ENCODER_PREFIX):
            target, name, expected = encoder, key[len(MOTION_ENCODER_PREFIX) :], motion_encoder_shapes
        else:
            name = key[len(UNET_PREFIX) :] if key.startswith(UNET_PREFIX) else key
            target, expected = unet, unet_shapes
        if name not in expected:
            unmapped.append(key)
        elif name in target:
            duplicated.append(key)
        else:
            target[name] = tensor

    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} unmapped checkpoint keys: {', '.join(sorted(unmapped)[:20])}")
    if duplicated:
        problems.append(f"{len(duplicated)} UNet keys present both with and without '{UNET_PREFIX}': {', '.join(sorted(duplicated)[:20])}")
    for label, converted, expected, prefix in (
        ("UNet", unet, unet_shapes, UNET_PREFIX),
        ("motion encoder", encoder, motion_encoder_shapes, MOTION_ENCODER_PREFIX),
    ):
        missing, _, wrong = state_dict_mismatches(converted, expected)  # unknown names were caught above
        if missing:
            problems.append(
                f"{len(missing)} of {len(expected)} {label} parameters missing from the checkpoint "
                f"(expected as '{prefix}<name>'): {', '.join(missing[:20])}"
            )
        if wrong:
            problems.append(
                f"{label} shape mismatches: "
                + ", ".join(f"{k}: checkpoint {given} vs ours {shape}" for k, given, shape in wrong[:20])
            )
    if problems:
        raise ConversionError("video detokenizer checkpoint does not match our modules:\n  " + "\n  ".join(problems))
    return unet, encoder


def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an original `.bin` (pickle, weights only) or `.safetensors` file, memory-mapped where possible."""
    return load_weights_file(path)


def unet_config_from_original(config: dict) -> dict:
    """Our UNet config from the original `unet/config.json` (same field names; private fields dropped)."""
    from ..modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel

    accepted = set(inspect.signature(VideoLavitUNetSpatioTemporalConditionModel.__init__).parameters) - {"self"}
    return {k: v for k, v in config.items() if k in accepted}


def build_detokenizer_modules(unet_config: dict | None = None, motion_encoder_config: dict | None = None, meta: bool = False):
    """Our UNet and motion encoder from configs (defaults = the release), optionally on the meta device."""
    from ..modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
    from ..modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel

    with torch.device("meta") if meta else torch.device("cpu"):
        unet = VideoLavitUNetSpatioTemporalConditionModel.from_config(unet_config or {})
        encoder = VideoLavitMotionConditionEncoder.from_config(motion_encoder_config or {})
    return unet, encoder


def load_converted_weights(
    unet, motion_encoder, state_dict: dict[str, torch.Tensor], dtype: torch.dtype | None = None
) -> None:
    """Convert `state_dict` and load it strictly into `unet` and `motion_encoder`.

    Modules on the meta device take the converted tensors themselves (`assign=True`; cast to `dtype` when given,
    else kept in the checkpoint's dtype), so a memory-mapped checkpoint is never copied; materialised modules
    copy the values in, in their own dtype.
    """
    unet_sd, encoder_sd = split_video_detokenizer_state_dict(state_dict, _shapes(unet), _shapes(motion_encoder))
    for module, converted in ((unet, unet_sd), (motion_encoder, encoder_sd)):
        on_meta = any(p.is_meta for p in module.parameters())
        if on_meta and dtype is not None:
            converted = {k: v.to(dtype) if v.is_floating_point() else v for k, v in converted.items()}
        module.load_state_dict(converted, strict=True, assign=on_meta)


def convert_video_detokenizer(
    checkpoint_dir: str | Path,
    output_dir: str | Path,
    weights: str | Path | None = None,
    motion_tokenizer_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    motion_encoder_config: dict | None = None,
):
    """Build a `VideoLavitReconstructionPipeline` from a released checkpoint folder and save it to `output_dir`.

    The UNet config is read from `video_detokenizer/unet/config.json`; the release ships no motion encoder
    config (the original hard-codes it), so `motion_encoder_config` defaults to the released values.
    Returns the pipeline.
    """
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

    from ..pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

    checkpoint_dir = Path(checkpoint_dir)
    detok_dir = checkpoint_dir / "video_detokenizer"
    weights = Path(weights) if weights else detok_dir / "unet" / "diffusion_pytorch_model.bin"
    if not weights.is_absolute() and not weights.is_file():
        weights = checkpoint_dir / weights
    unet_config_path = detok_dir / "unet" / "config.json"
    unet_config = (
        unet_config_from_original(json.loads(unet_config_path.read_text())) if unet_config_path.is_file() else None
    )
    # built on meta and filled with the (memory-mapped) checkpoint tensors: no second full-size copy
    unet, motion_encoder = build_detokenizer_modules(unet_config, motion_encoder_config, meta=True)
    load_converted_weights(unet, motion_encoder, load_original_state_dict(weights), dtype=dtype)

    vae = AutoencoderKLTemporalDecoder.from_pretrained(detok_dir / "vae")
    scheduler_dir = detok_dir / "scheduler"
    if (scheduler_dir / "scheduler_config.json").is_file():
        scheduler = EulerDiscreteScheduler.from_pretrained(scheduler_dir)
    else:
        scheduler = EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG)
    motion_tokenizer = None
    if motion_tokenizer_dir is not None:
        from ..modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer

        motion_tokenizer = VideoLavitMotionTokenizer.from_pretrained(motion_tokenizer_dir, dtype=torch.float32)

    pipeline = VideoLavitReconstructionPipeline(
        vae=vae, unet=unet, scheduler=scheduler, motion_encoder=motion_encoder, motion_tokenizer=motion_tokenizer
    )
    pipeline.to(dtype=dtype)
    pipeline.save_pretrained(output_dir, safe_serialization=True)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", required=True, type=Path, help="released Video-LaVIT-v1 folder")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--weights", type=Path, default=None, help="UNet + motion encoder file (default: video_detokenizer/unet/diffusion_pytorch_model.bin)")
    parser.add_argument("--motion-tokenizer", type=Path, default=None, help="converted motion tokenizer folder to bundle")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = parser.parse_args(argv)
    convert_video_detokenizer(
        args.checkpoint_dir, args.output_dir, args.weights, args.motion_tokenizer, getattr(torch, args.dtype)
    )
    print(f"saved the video detokenizer pipeline to {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
