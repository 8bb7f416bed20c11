# Copyright 2024 The Video-LaVIT authors and the HuggingFace-native reimplementation contributors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Video-LaVIT video detokenizer: keyframe + motion -> a clip of frames (EDM Euler sampling of a 3D UNet)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLTemporalDecoder, DiffusionPipeline, EulerDiscreteScheduler
from diffusers.image_processor import PipelineImageInput
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import is_compiled_module, randn_tensor
from diffusers.video_processor import VideoProcessor

from ..modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from ..modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
from ..modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from PIL import Image
        >>> from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline
        >>> from video_lavit.pipelines.video_export import export_to_mp4

        >>> pipe = VideoLavitReconstructionPipeline.from_pretrained("converted/video_detokenizer", torch_dtype=torch.float16)
        >>> pipe.enable_model_cpu_offload()
        >>> keyframe = Image.open("keyframe.png").convert("RGB").resize((576, 320))
        >>> motion_token_ids = torch.randint(0, 1024, (135,))  # 135 motion codes from the LLM
        >>> frames = pipe(keyframe, motion_token_ids=motion_token_ids, generator=torch.Generator().manual_seed(0)).frames[0]
        >>> export_to_mp4(frames, "clip.mp4", fps=6)
        ```
"""


@dataclass
class VideoLavitReconstructionPipelineOutput(BaseOutput):
    r"""
    Args:
        frames (`list[list[PIL.Image.Image]]`, `np.ndarray` of shape `(batch, num_frames, height, width, 3)` or
            `torch.Tensor` of shape `(batch, num_frames, 3, height, width)`; latents `(batch, num_frames, 4, h, w)`
            for `output_type="latent"`).
    """

    frames: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor


def _append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    return x[(...,) + (None,) * (target_dims - x.ndim)]


def _image_size(image) -> tuple[int, tuple[int, int]]:
    """`(batch_size, (height, width))` of a keyframe input."""
    if isinstance(image, PIL.Image.Image):
        return 1, (image.height, image.width)
    if isinstance(image, list) and image and all(isinstance(i, PIL.Image.Image) for i in image):
        sizes = {(i.height, i.width) for i in image}
        if len(sizes) != 1:
            raise ValueError(f"all keyframes must have the same size, got {sorted(sizes)}")
        return len(image), sizes.pop()
    if isinstance(image, np.ndarray) and image.ndim in (3, 4) and image.shape[-1] in (1, 3):
        return (1 if image.ndim == 3 else image.shape[0]), tuple(image.shape[-3:-1])
    if isinstance(image, torch.Tensor) and image.ndim in (3, 4) and image.shape[-3] == 3:
        return (1 if image.ndim == 3 else image.shape[0]), tuple(image.shape[-2:])
    raise TypeError(
        "image must be a PIL image, a list of PIL images, a numpy array [(B,) H, W, 3] or a tensor [(B,) 3, H, W], "
        f"got {type(image).__name__}" + (f" of shape {tuple(image.shape)}" if hasattr(image, "shape") else "")
    )


class VideoLavitReconstructionPipeline(DiffusionPipeline):
    r"""
    Video-LaVIT video detokenizer: decodes a keyframe plus motion (a dense motion field, or the 135 motion codes
    of the LLM through `motion_tokenizer`) into a clip of frames.

    Components:
        vae ([`AutoencoderKLTemporalDecoder`]): encodes the keyframe, decodes frames with temporal layers.
        unet ([`VideoLavitUNetSpatioTemporalConditionModel`]): the 3D UNet (10 input channels).
        scheduler ([`EulerDiscreteScheduler`]): EDM Euler sampler with SVD's settings (v-prediction, Karras sigmas).
        motion_encoder ([`VideoLavitMotionConditionEncoder`]): motion field -> per-frame cross-attention context.
        motion_tokenizer ([`VideoLavitMotionTokenizer`], *optional*): decodes motion code ids into a motion field.
    """

    model_cpu_offload_seq = "motion_tokenizer->motion_encoder->unet->vae"
    _optional_components = ["motion_tokenizer"]
    _callback_tensor_inputs = ["latents", "noise_pred"]

    def __init__(
        self,
        vae: AutoencoderKLTemporalDecoder,
        unet: VideoLavitUNetSpatioTemporalConditionModel,
        scheduler: EulerDiscreteScheduler,
        motion_encoder: VideoLavitMotionConditionEncoder,
        motion_tokenizer: VideoLavitMotionTokenizer | None = None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae, unet=unet, scheduler=scheduler, motion_encoder=motion_encoder, motion_tokenizer=motion_tokenizer
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8
        self.video_processor = VideoProcessor(do_resize=False, vae_scale_factor=self.vae_scale_factor)

    @property
    def size_multiple(self) -> int:
        """Pixel height/width must be multiples of this (64 for the released UNet: /8 VAE, three down-samplings)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        if isinstance(self.guidance_scale, (int, float)):
            return self.guidance_scale > 1
        return bool(self.guidance_scale.max() > 1)

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    # ------------------------------------------------------------------------------------------ inputs
    def check_inputs(self, image, motion, motion_token_ids, height, width, num_frames, callback_tensor_inputs):
        """Validate sizes and the motion source; returns `(batch_size, height, width)`."""
        batch_size, (image_h, image_w) = _image_size(image)
        height = image_h if height is None else height
        width = image_w if width is None else width
        if (height, width) != (image_h, image_w):
            raise ValueError(
                f"the keyframe is {image_h}x{image_w} (height x width) but the requested video size is "
                f"{height}x{width}; resize the keyframe first"
            )
        multiple = self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}, got {height}x{width}")
        if (motion is None) == (motion_token_ids is None):
            raise ValueError("pass exactly one of `motion` (a motion field) and `motion_token_ids` (motion codes)")
        if motion is not None:
            expected = (self.motion_encoder.config.in_channels, num_frames or "T", height // self.vae_scale_factor, width // self.vae_scale_factor)
            if not isinstance(motion, torch.Tensor) or motion.ndim not in (4, 5) or not motion.is_floating_point():
                raise ValueError(
                    f"motion must be a float tensor [(batch,) {', '.join(map(str, expected))}], got "
                    f"{type(motion).__name__}{tuple(motion.shape) if isinstance(motion, torch.Tensor) else ''}"
                )
            shape = motion.shape[-4:]
            if (
                shape[0] != expected[0]
                or tuple(shape[2:]) != expected[2:]
                or (num_frames is not None and shape[1] != num_frames)
            ):
                raise ValueError(
                    f"motion must have shape [(batch,) {', '.join(map(str, expected))}] for a {height}x{width} "
                    f"video, got {tuple(motion.shape)}"
                )
            motion_batch = 1 if motion.ndim == 4 else motion.shape[0]
        else:
            motion_batch = self._check_motion_token_ids(motion_token_ids, num_frames)
        if motion_batch != batch_size:
            raise ValueError(f"got {batch_size} keyframe(s) but motion for {motion_batch} clip(s)")
        unknown = [k for k in callback_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs {unknown} not in {self._callback_tensor_inputs}")
        return batch_size, height, width

    def _check_motion_token_ids(self, motion_token_ids, num_frames) -> int:
        if self.motion_tokenizer is None:
            raise ValueError("motion_token_ids need the `motion_tokenizer` component; load it or pass `motion`")
        config = self.motion_tokenizer.config
        ids = torch.as_tensor(motion_token_ids)
        if ids.is_floating_point() or ids.dtype == torch.bool or ids.ndim not in (1, 2):
            raise ValueError(
                f"motion_token_ids must be integer ids of shape [(batch,) {config.num_motion_tokens}], got "
                f"{ids.dtype} {tuple(ids.shape)}"
            )
        if ids.shape[-1] != config.num_motion_tokens:
            raise ValueError(
                f"each clip needs exactly {config.num_motion_tokens} motion tokens, got {ids.shape[-1]}"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= config.codebook_size):
            raise ValueError(
                f"motion token ids must lie in [0, {config.codebook_size - 1}] (codebook indices, without the LLM "
                f"offset), got values in [{int(ids.min())}, {int(ids.max())}]"
            )
        if num_frames is not None and num_frames != config.num_frames:
            raise ValueError(f"the motion tokenizer decodes {config.num_frames} frames, num_frames={num_frames} was requested")
        return 1 if ids.ndim == 1 else ids.shape[0]

    def prepare_motion(self, motion, motion_token_ids, batch_size, height, width, device, dtype) -> torch.Tensor:
        """Motion field `[batch, 2, num_frames, height / 8, width / 8]` at the detokenizer scale."""
        if motion_token_ids is not None:
            ids = torch.as_tensor(motion_token_ids).long().reshape(batch_size, -1)
            tokenizer_device = self.motion_tokenizer.device
            motion = self.motion_tokenizer.reconstruct(
                ids.to(tokenizer_device), size=(height // self.vae_scale_factor, width // self.vae_scale_factor)
            )
        motion = motion.reshape(batch_size, *motion.shape[-4:])
        return motion.to(device=device, dtype=dtype)

    def encode_motion(self, motion: torch.Tensor, do_classifier_free_guidance: bool) -> torch.Tensor:
        """Per-frame motion features `[batch, T, tokens, dim]` (all-zero unconditional half first under CFG)."""
        encoder = self.motion_encoder
        features = encoder(motion.to(device=encoder.device, dtype=encoder.dtype)).motion_hidden_states
        if do_classifier_free_guidance:
            features = torch.cat([torch.zeros_like(features), features])
        return features

    def encode_keyframe(self, image: torch.Tensor, noise_aug_strength: float, generator, keyframe_noise, do_classifier_free_guidance: bool):
        """Noise-augmented keyframe -> VAE posterior mode `[batch, 4, h, w]`, NOT multiplied by the scaling factor
        (as the original was trained). The augmentation noise is this call's first random draw."""
        if keyframe_noise is None:
            keyframe_noise = randn_tensor(image.shape, generator=generator, device=image.device, dtype=image.dtype)
        elif tuple(keyframe_noise.shape) != tuple(image.shape):
            raise ValueError(f"keyframe_noise must have shape {tuple(image.shape)}, got {tuple(keyframe_noise.shape)}")
        image = image + noise_aug_strength * keyframe_noise.to(device=image.device, dtype=image.dtype)

        needs_upcasting = self.vae.dtype == torch.float16 and self.vae.config.force_upcast
        if needs_upcasting:
            self.vae.to(dtype=torch.float32)
        image_latents = self.vae.encode(image.to(self.vae.dtype)).latent_dist.mode()
        if needs_upcasting:
            self.vae.to(dtype=torch.float16)
        if do_classifier_free_guidance:
            image_latents = torch.cat([torch.zeros_like(image_latents), image_latents])
        return image_latents

    def _get_add_time_ids(self, fps, motion_bucket_id, noise_aug_strength, dtype, batch_size, do_classifier_free_guidance):
        add_time_ids = [fps, motion_bucket_id, noise_aug_strength]
        expected = self.unet.add_embedding.linear_1.in_features
        if self.unet.config.addition_time_embed_dim * len(add_time_ids) != expected:
            raise ValueError(
                f"the UNet expects {expected // self.unet.config.addition_time_embed_dim} added time ids, "
                f"got {len(add_time_ids)} (fps, motion_bucket_id, noise_aug_strength)"
            )
        add_time_ids = torch.tensor([add_time_ids], dtype=dtype).repeat(batch_size, 1)
        if do_classifier_free_guidance:
            add_time_ids = torch.cat([add_time_ids, add_time_ids])
        return add_time_ids

    def prepare_latents(self, batch_size, num_frames, height, width, dtype, device, generator, latents=None):
        """Initial noise `[batch, T, 4, h, w]` (the call's second random draw) scaled by `init_noise_sigma`."""
        shape = (
            batch_size,
            num_frames,
            self.unet.config.out_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for a batch of {batch_size}")
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    def decode_latents(self, latents: torch.Tensor, num_frames: int, decode_chunk_size: int = 8) -> torch.Tensor:
        """Latents `[batch, T, 4, h, w]` -> frames `[batch, 3, T, H, W]` (float32, about [-1, 1]).

        Decodes `decode_chunk_size` frames at a time; the temporal decoder only mixes frames within a chunk, so
        the chunk size changes the result (the original uses 8)."""
        latents = latents.flatten(0, 1) / self.vae.config.scaling_factor
        latents = latents.to(self.vae.dtype)
        forward = self.vae._orig_mod.forward if is_compiled_module(self.vae) else self.vae.forward
        accepts_num_frames = "num_frames" in inspect.signature(forward).parameters
        frames = []
        for start in range(0, latents.shape[0], decode_chunk_size):
            chunk = latents[start : start + decode_chunk_size]
            kwargs = {"num_frames": chunk.shape[0]} if accepts_num_frames else {}
            frames.append(self.vae.decode(chunk, **kwargs).sample)
        frames = torch.cat(frames)
        return frames.reshape(-1, num_frames, *frames.shape[1:]).permute(0, 2, 1, 3, 4).float()

    # ------------------------------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(
        self,
        image: PipelineImageInput,
        motion: torch.Tensor | None = None,
        motion_token_ids: torch.LongTensor | list[int] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 25,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 4.0,
        linear_guidance: bool = True,
        fps: int = 6,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int | None = 8,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        keyframe_noise: torch.Tensor | None = None,
        output_type: str = "pil",
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        return_dict: bool = True,
    ):
        r"""
        Args:
            image (`PIL.Image.Image`, `list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
                Keyframe(s) of the clip(s), already at the video size. Tensors `[(B,) 3, H, W]` in [0, 1] or [-1, 1],
                arrays `[(B,) H, W, 3]` in [0, 1].
            motion (`torch.Tensor` of shape `([B,] 2, T, H / 8, W / 8)`, *optional*):
                Dense motion field at the detokenizer scale (e.g. from the reconstruction preprocessing).
            motion_token_ids (`torch.LongTensor` of shape `([B,] 135)`, *optional*):
                Motion codebook indices (0..1023, no LLM offset); decoded by `motion_tokenizer`.
            height, width (`int`, *optional*): video size, defaults to the keyframe's; multiples of 64.
            num_frames (`int`, *optional*): defaults to the motion's frame count (24).
            num_inference_steps (`int`, defaults to 25): Euler steps.
            min_guidance_scale, max_guidance_scale (`float`, defaults to 1.0 and 4.0): classifier-free guidance
                grows linearly from the first to the last frame (constant `max_guidance_scale` with
                `linear_guidance=False`). The unconditional branch zeroes the motion features, the keyframe latents
                and the motion channels.
            fps (`int`, defaults to 6), motion_bucket_id (`int`, defaults to 127), noise_aug_strength (`float`,
                defaults to 0.02): the UNet's added time ids (fps is passed as is, unlike SVD's `fps - 1`).
            decode_chunk_size (`int`, defaults to 8): frames decoded per VAE call (lower = less memory).
            generator (`torch.Generator`, *optional*): makes the two random draws (keyframe noise augmentation,
                then initial latents) reproducible.
            latents (`torch.Tensor` of shape `(B, T, 4, H / 8, W / 8)`, *optional*): initial noise, before scaling
                by `init_noise_sigma`.
            keyframe_noise (`torch.Tensor` like the preprocessed keyframe, *optional*): noise-augmentation draw.
            output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"`, `"pt"` or `"latent"`.
            callback_on_step_end (`Callable`, *optional*): called as `callback(pipe, step, t, tensors)` after every
                step with the tensors named in `callback_on_step_end_tensor_inputs` (`latents`, `noise_pred`); a
                returned `latents` replaces the current one.
            return_dict (`bool`, defaults to `True`): return a [`VideoLavitReconstructionPipelineOutput`].

        Returns:
            [`VideoLavitReconstructionPipelineOutput`] or a tuple holding `frames`.
        """
        # 1. Check inputs
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be one of 'pil', 'np', 'pt', 'latent', got {output_type!r}")
        batch_size, height, width = self.check_inputs(
            image, motion, motion_token_ids, height, width, num_frames, callback_on_step_end_tensor_inputs
        )
        device = self._execution_device
        self._guidance_scale = max_guidance_scale

        # 2. Motion field and motion features
        motion = self.prepare_motion(motion, motion_token_ids, batch_size, height, width, device, torch.float32)
        num_frames = motion.shape[2]
        decode_chunk_size = decode_chunk_size or num_frames
        motion_features = self.encode_motion(motion, self.do_classifier_free_guidance)

        # 3. Keyframe latents (first random draw)
        image = self.video_processor.preprocess(image, height=height, width=width).to(device)
        image_latents = self.encode_keyframe(
            image, noise_aug_strength, generator, keyframe_noise, self.do_classifier_free_guidance
        )
        image_latents = image_latents.unsqueeze(1).repeat(1, num_frames, 1, 1, 1)
        motion_latents = motion.permute(0, 2, 1, 3, 4).to(image_latents.dtype)
        if self.do_classifier_free_guidance:
            motion_latents = torch.cat([torch.zeros_like(motion_latents), motion_latents])

        # 4. Added time ids
        added_time_ids = self._get_add_time_ids(
            fps, motion_bucket_id, noise_aug_strength, image_latents.dtype, batch_size, self.do_classifier_free_guidance
        ).to(device)

        # 5. Timesteps and initial latents (second random draw)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        latents = self.prepare_latents(
            batch_size, num_frames, height, width, image_latents.dtype, device, generator, latents
        )

        # 6. Per-frame guidance scale [B, T, 1, 1, 1]
        if linear_guidance:
            guidance_scale = torch.linspace(min_guidance_scale, max_guidance_scale, num_frames).unsqueeze(0)
            guidance_scale = guidance_scale.to(device, latents.dtype).repeat(batch_size, 1)
            self._guidance_scale = _append_dims(guidance_scale, latents.ndim)

        # 7. Denoising loop
        unet_dtype = self.unet.dtype
        motion_features = motion_features.to(unet_dtype)
        added_time_ids = added_time_ids.to(unet_dtype)
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                latent_model_input = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
                latent_model_input = self.scheduler.scale_model_input(latent_model_input, t)
                latent_model_input = torch.cat([latent_model_input, image_latents, motion_latents], dim=2)

                noise_pred = self.unet(
                    latent_model_input.to(unet_dtype),
                    t.to(unet_dtype),
                    encoder_hidden_states=motion_features,
                    added_time_ids=added_time_ids,
                    return_dict=False,
                )[0].to(latents.dtype)

                if self.do_classifier_free_guidance:
                    noise_pred_uncond, noise_pred_cond = noise_pred.chunk(2)
                    noise_pred = noise_pred_uncond + self.guidance_scale * (noise_pred_cond - noise_pred_uncond)

                latents = self.scheduler.step(noise_pred, t, latents).prev_sample

                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    for name in callback_on_step_end_tensor_inputs:
                        callback_kwargs[name] = locals()[name]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                progress_bar.update()

        # 8. Decode
        if output_type == "latent":
            frames = latents
        else:
            frames = self.decode_latents(latents, num_frames, decode_chunk_size)
            frames = self.video_processor.postprocess_video(video=frames, output_type=output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return VideoLavitReconstructionPipelineOutput(frames=frames)


__all__ = ["VideoLavitReconstructionPipeline", "VideoLavitReconstructionPipelineOutput"]
