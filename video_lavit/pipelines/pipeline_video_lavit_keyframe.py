"""Keyframe detokenizer: visual codes (or the LLM's image token ids) -> keyframe image.

Codes are decoded by `VideoLavitKeyframeDecoder` into SDXL conditioning, then an SDXL-layout
`UNet2DConditionModel` denoises latents with classifier-free guidance against an all-zero condition, and
`AutoencoderKL` decodes them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    EulerAncestralDiscreteScheduler,
    UNet2DConditionModel,
)
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from ..modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder

# The released UNet's down/up-sampling needs spatial sizes divisible by 64 pixels.
SIZE_MULTIPLE = 64


def _as_sequences(tokens, name: str) -> list[torch.Tensor]:
    """A single 1-D sequence, a 2-D tensor (one row per image) or a list of sequences -> list of 1-D tensors."""
    if isinstance(tokens, torch.Tensor):
        if tokens.ndim == 1:
            return [tokens]
        if tokens.ndim == 2:
            return list(tokens)
        raise ValueError(f"{name} must be 1-D (one image) or 2-D (one row per image), got shape {tuple(tokens.shape)}")
    if not isinstance(tokens, (list, tuple)):
        raise TypeError(f"{name} must be a tensor or a list of sequences, got {type(tokens).__name__}")
    if not tokens:
        raise ValueError(f"{name} is an empty list; give at least one image")
    if all(isinstance(t, int) for t in tokens):
        return [torch.tensor(tokens, dtype=torch.long)]
    sequences = [torch.as_tensor(t) for t in tokens]
    for i, seq in enumerate(sequences):
        if seq.ndim != 1:
            raise ValueError(f"{name}[{i}] must be 1-D, got shape {tuple(seq.shape)}")
    return sequences


def image_token_ids_to_codes(
    image_token_ids,
    codebook_size: int,
    visual_token_offset: int = 32002,
    image_start_token_id: int = 32000,
    image_end_token_id: int = 32001,
) -> list[torch.LongTensor]:
    """LLM ids of each image (`[IMG] c_1 ... c_K [/IMG]`, the markers optional) -> visual codes `[K]`.

    The `[IMG]`/`[/IMG]` markers are removed and `visual_token_offset` is subtracted. Any other id outside
    `[visual_token_offset, visual_token_offset + codebook_size)` raises `ValueError` (the original silently
    dropped text ids and crashed on motion ids).
    """
    codes = []
    for i, ids in enumerate(_as_sequences(image_token_ids, "image_token_ids")):
        if ids.is_floating_point():
            raise TypeError(f"image_token_ids[{i}] must hold integers, got dtype {ids.dtype}")
        ids = ids[(ids != image_start_token_id) & (ids != image_end_token_id)].long()
        bad = ids[(ids < visual_token_offset) | (ids >= visual_token_offset + codebook_size)]
        if bad.numel():
            raise ValueError(
                f"image_token_ids[{i}] holds ids outside the visual range [{visual_token_offset}, "
                f"{visual_token_offset + codebook_size}) besides {image_start_token_id}/{image_end_token_id}: "
                f"{bad[:8].tolist()}"
            )
        codes.append(ids - visual_token_offset)
    return codes


class VideoLavitKeyframePipeline(DiffusionPipeline):
    r"""
    Keyframe (image) detokenizer of Video-LaVIT.

    Args:
        keyframe_decoder ([`VideoLavitKeyframeDecoder`]): codes -> `prompt_embeds` / `pooled_prompt_embeds`.
        unet ([`UNet2DConditionModel`]): SDXL layout, `addition_embed_type="text_time"`. Its `in_channels` are the
            VAE's latent channels (the released model), or those plus the decoder's `code_dim`: then the codes,
            laid out on the patch grid (`VideoLavitKeyframeDecoder.spatial_code_map`), are concatenated to the
            latents at every step, as SVD concatenates its image latents (the miniature of `video_lavit.mini`).
        vae ([`AutoencoderKL`]): the SDXL VAE.
        scheduler ([`DDIMScheduler`] or [`EulerAncestralDiscreteScheduler`]): as shipped in the checkpoint.
        visual_token_offset (`int`, defaults to 32002): LLM id of visual code 0.
        image_start_token_id / image_end_token_id (`int`, defaults to 32000 / 32001): `[IMG]` / `[/IMG]`.
    """

    model_cpu_offload_seq = "keyframe_decoder->unet->vae"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "add_text_embeds", "add_time_ids"]

    def __init__(
        self,
        keyframe_decoder: VideoLavitKeyframeDecoder,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        scheduler: DDIMScheduler | EulerAncestralDiscreteScheduler,
        visual_token_offset: int = 32002,
        image_start_token_id: int = 32000,
        image_end_token_id: int = 32001,
    ):
        super().__init__()
        self.register_modules(keyframe_decoder=keyframe_decoder, unet=unet, vae=vae, scheduler=scheduler)
        self.register_to_config(
            visual_token_offset=visual_token_offset,
            image_start_token_id=image_start_token_id,
            image_end_token_id=image_end_token_id,
        )
        self._check_component_sizes(keyframe_decoder, unet, vae)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if vae is not None else 8
        # The original resizes the previous clip's last frame with PIL bicubic before re-noising it.
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, resample="bicubic")

    @staticmethod
    def _check_component_sizes(decoder, unet, vae=None):
        """The decoder's outputs must be the UNet's context width and the text part of its `text_time` input; the
        UNet's input channels the VAE's latent channels, plus `code_dim` for a spatial code map."""
        if decoder is None or unet is None:
            return
        if vae is not None:
            latent, extra = vae.config.latent_channels, unet.config.in_channels - vae.config.latent_channels
            if unet.config.out_channels != latent or extra not in (0, decoder.config.code_dim):
                raise ValueError(
                    f"unet in/out channels {unet.config.in_channels}/{unet.config.out_channels} fit neither the VAE's "
                    f"{latent} latent channels nor those plus the decoder's code_dim {decoder.config.code_dim}"
                )
        context = sum(decoder.config.prompt_embed_dims)
        if unet.config.cross_attention_dim != context:
            raise ValueError(
                f"unet.cross_attention_dim {unet.config.cross_attention_dim} != keyframe decoder prompt width {context}"
            )
        if unet.config.addition_embed_type != "text_time":
            raise ValueError(f"the unet needs addition_embed_type='text_time', got {unet.config.addition_embed_type!r}")
        expected = decoder.config.pooled_embed_dim + 6 * unet.config.addition_time_embed_dim
        if unet.config.projection_class_embeddings_input_dim != expected:
            raise ValueError(
                f"unet.projection_class_embeddings_input_dim {unet.config.projection_class_embeddings_input_dim} != "
                f"pooled width {decoder.config.pooled_embed_dim} + 6 time ids x {unet.config.addition_time_embed_dim}"
            )

    @property
    def uses_code_map(self) -> bool:
        """Whether the UNet also takes the codes laid out on the patch grid as extra input channels."""
        return self.unet.config.in_channels > self.unet.config.out_channels

    # ----------------------------------------------------------------------------------------------------------

    def check_inputs(self, codes, image_token_ids, prompt_embeds, pooled_prompt_embeds, height, width,
                     num_inference_steps, output_type, callback_on_step_end_tensor_inputs, image=None, latents=None,
                     image_inverse_rate=0.85, num_images_per_prompt=1):
        given = [name for name, value in (("codes", codes), ("image_token_ids", image_token_ids),
                                          ("prompt_embeds", prompt_embeds)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"pass exactly one of `codes`, `image_token_ids` or `prompt_embeds`, got {given or 'none'}")
        if (prompt_embeds is None) != (pooled_prompt_embeds is None):
            raise ValueError("`prompt_embeds` and `pooled_prompt_embeds` must be given together")
        if prompt_embeds is not None and self.uses_code_map:
            raise ValueError("this keyframe UNet also reads the codes on the patch grid; pass `codes` or `image_token_ids`")
        if prompt_embeds is not None:
            width_ = self.unet.config.cross_attention_dim
            if prompt_embeds.ndim != 3 or prompt_embeds.shape[-1] != width_:
                raise ValueError(f"prompt_embeds must be [B, L, {width_}], got {tuple(prompt_embeds.shape)}")
            pooled_ = self.keyframe_decoder.config.pooled_embed_dim
            if tuple(pooled_prompt_embeds.shape) != (prompt_embeds.shape[0], pooled_):
                raise ValueError(
                    f"pooled_prompt_embeds must be [{prompt_embeds.shape[0]}, {pooled_}], got {tuple(pooled_prompt_embeds.shape)}"
                )
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of {SIZE_MULTIPLE}, got {height}x{width}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be >= 1, got {num_images_per_prompt}")
        if image is not None and latents is not None:
            raise ValueError("pass either `image` (long-video re-noising) or `latents`, not both")
        if not 0.0 <= image_inverse_rate < 1.0:
            raise ValueError(f"image_inverse_rate must be in [0, 1), got {image_inverse_rate}")
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback tensor inputs {unknown} are not among {self._callback_tensor_inputs}")

    def encode_codes(self, codes, device: torch.device, num_images_per_prompt: int = 1):
        """Codes -> (`prompt_embeds` `[B*n, Q, C]`, `pooled_prompt_embeds` `[B*n, P]`) on `device`."""
        out = self.keyframe_decoder(codes=_as_sequences(codes, "codes"))
        prompt_embeds = out.prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0).to(device)
        pooled = out.pooled_prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0).to(device)
        return prompt_embeds, pooled

    def prepare_latents(self, batch_size, height, width, dtype, device, generator, latents=None):
        shape = (batch_size, self.unet.config.out_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for a batch of {batch_size} images")
        if latents is None:
            # Drawn on the CPU as the original does, so a seed gives the same image on every device.
            latents = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
            latents = latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents

    def prepare_image_latents(self, image, height, width, timestep, dtype, device, generator):
        """Long-video re-noising: the previous clip's last frame -> VAE posterior mode x scaling factor, forward
        noised to `timestep` with fresh Gaussian noise (the original's "noise constraint", SDEdit-like)."""
        pixels = self.image_processor.preprocess(image, height=height, width=width)
        needs_upcasting = self.vae.dtype == torch.float16 and self.vae.config.force_upcast
        if needs_upcasting:
            self.upcast_vae()
        pixels = pixels.to(device=device, dtype=self.vae.dtype)
        latents = self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor
        if needs_upcasting:
            self.vae.to(dtype=torch.float16)
        noise = randn_tensor(latents.shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
        latents = self.scheduler.add_noise(latents.float(), noise.to(device), timestep.reshape(1).repeat(len(latents)))
        # The original also multiplies by init_noise_sigma, which is 1 for DDIM and wrong for sigma-based
        # schedulers (add_noise already applies sigma); it is left out.
        return latents.to(dtype)

    @staticmethod
    def _get_add_time_ids(original_size, crops_coords_top_left, target_size, dtype):
        return torch.tensor([list(original_size) + list(crops_coords_top_left) + list(target_size)], dtype=dtype)

    def upcast_vae(self):
        self.vae.to(dtype=torch.float32)

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self):
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self):
        return self._num_timesteps

    # ----------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        codes: torch.LongTensor | Sequence | None = None,
        image_token_ids: torch.LongTensor | Sequence | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        num_images_per_prompt: int = 1,
        original_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: tuple[int, int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.FloatTensor | None = None,
        prompt_embeds: torch.FloatTensor | None = None,
        pooled_prompt_embeds: torch.FloatTensor | None = None,
        image=None,
        image_inverse_rate: float = 0.85,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ):
        r"""
        Args:
            codes (`list[torch.LongTensor]` of shapes `[K_i]`, a `LongTensor` `[K]` or `[B, K]`, or lists of ints):
                visual codes in `[0, codebook_size)`, one sequence per image (1 to 256 codes).
            image_token_ids (same forms): the LLM's ids for each image instead of codes - codes shifted by
                `visual_token_offset` (32002), optionally wrapped in `[IMG]` (32000) / `[/IMG]` (32001).
            height, width (`int`, defaults to the UNet's sample size x 8, 1024): multiples of 64. The paper's
                video keyframes use 576x1024 (height x width).
            num_inference_steps (`int`, defaults to 50), guidance_scale (`float`, defaults to 3.0; the original
                notebooks use 7.0): classifier-free guidance against all-zero embeddings; off when <= 1.
            original_size, crops_coords_top_left, target_size: SDXL micro-conditioning, defaults
                `(height, width)`, `(0, 0)`, `(height, width)`.
            generator: makes the initial noise (and ancestral steps) reproducible.
            latents (`[B*n, 4, height/8, width/8]`): start from these (already scaled) latents instead of noise.
            prompt_embeds / pooled_prompt_embeds: skip the keyframe decoder.
            image (PIL image or list, one per generated image, *optional*): long-video decoding. The previous
                clip's last frame is bicubic-resized, VAE-encoded and forward-noised to timestep
                `timesteps[int(image_inverse_rate * num_inference_steps)]`; only the remaining steps run.
            image_inverse_rate (`float`, defaults to 0.85; the long-video notebook uses 0.9): see `image`.
            output_type (`"pil"`, `"np"`, `"pt"` or `"latent"`).
            callback_on_step_end: `fn(pipe, step, timestep, tensors) -> dict` called after every step.

        Returns:
            [`ImagePipelineOutput`] with `images` (a list of PIL images, `np.ndarray [B, H, W, 3]` or
            `torch.Tensor [B, 3, H, W]` in [0, 1]).
        """
        # 0. Default size: the UNet's native resolution
        height = height or self.unet.config.sample_size * self.vae_scale_factor
        width = width or self.unet.config.sample_size * self.vae_scale_factor

        # 1. Check inputs
        self.check_inputs(codes, image_token_ids, prompt_embeds, pooled_prompt_embeds, height, width,
                          num_inference_steps, output_type, callback_on_step_end_tensor_inputs, image, latents,
                          image_inverse_rate, num_images_per_prompt)
        self._guidance_scale = guidance_scale
        device = self._execution_device

        # 2. Visual codes -> SDXL conditioning; the negative condition is all zeros, as trained
        if image_token_ids is not None:
            codes = image_token_ids_to_codes(
                image_token_ids, self.keyframe_decoder.config.codebook_size, self.config.visual_token_offset,
                self.config.image_start_token_id, self.config.image_end_token_id,
            )
        code_map = None
        if codes is not None:
            prompt_embeds, pooled_prompt_embeds = self.encode_codes(codes, device, num_images_per_prompt)
            if self.uses_code_map:
                size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
                code_map = self.keyframe_decoder.spatial_code_map(_as_sequences(codes, "codes"), size)
                code_map = code_map.repeat_interleave(num_images_per_prompt, dim=0).to(device, self.unet.dtype)
        else:
            prompt_embeds = prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0).to(device)
            pooled_prompt_embeds = pooled_prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0).to(device)
        batch_size = prompt_embeds.shape[0]
        prompt_embeds = prompt_embeds.to(self.unet.dtype)
        add_text_embeds = pooled_prompt_embeds.to(self.unet.dtype)

        # 3. Timesteps; long-video re-noising starts part-way through the schedule
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        start_step = int(image_inverse_rate * num_inference_steps) if image is not None else 0
        timesteps = self.scheduler.timesteps[start_step:]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start_step)

        # 4. Initial latents: noise, given latents, or the re-noised previous frame
        if image is not None:
            latents = self.prepare_image_latents(image, height, width, timesteps[0], prompt_embeds.dtype, device, generator)
            if latents.shape[0] != batch_size:
                raise ValueError(f"got {latents.shape[0]} images for {batch_size} keyframes")
        else:
            latents = self.prepare_latents(batch_size, height, width, prompt_embeds.dtype, device, generator, latents)

        # 5. SDXL added time ids: (original h, w, crop top, left, target h, w)
        original_size = original_size or (height, width)
        target_size = target_size or (height, width)
        add_time_ids = self._get_add_time_ids(original_size, crops_coords_top_left, target_size, prompt_embeds.dtype)
        add_time_ids = add_time_ids.to(device).repeat(batch_size, 1)
        if self.do_classifier_free_guidance:
            prompt_embeds = torch.cat([torch.zeros_like(prompt_embeds), prompt_embeds])
            add_text_embeds = torch.cat([torch.zeros_like(add_text_embeds), add_text_embeds])
            add_time_ids = torch.cat([add_time_ids, add_time_ids])
            if code_map is not None:
                code_map = torch.cat([torch.zeros_like(code_map), code_map])

        # 6. Denoising loop
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                latent_model_input = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
                latent_model_input = self.scheduler.scale_model_input(latent_model_input, t)
                if code_map is not None:
                    latent_model_input = torch.cat([latent_model_input, code_map], dim=1)
                noise_pred = self.unet(
                    latent_model_input,
                    t,
                    encoder_hidden_states=prompt_embeds,
                    added_cond_kwargs={"text_embeds": add_text_embeds, "time_ids": add_time_ids},
                    return_dict=False,
                )[0]
                if self.do_classifier_free_guidance:
                    noise_pred_uncond, noise_pred_cond = noise_pred.chunk(2)
                    noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_cond - noise_pred_uncond)
                latents = self.scheduler.step(noise_pred, t, latents, generator=generator, return_dict=False)[0]

                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    for k in callback_on_step_end_tensor_inputs:
                        callback_kwargs[k] = locals()[k]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                    prompt_embeds = callback_outputs.pop("prompt_embeds", prompt_embeds)
                    add_text_embeds = callback_outputs.pop("add_text_embeds", add_text_embeds)
                    add_time_ids = callback_outputs.pop("add_time_ids", add_time_ids)
                progress_bar.update()

        # 7. Decode; an fp16 SDXL VAE overflows, so it runs in float32 when its config asks for it
        if output_type == "latent":
            image = latents
        else:
            needs_upcasting = self.vae.dtype == torch.float16 and self.vae.config.force_upcast
            if needs_upcasting:
                self.upcast_vae()
            latents = latents.to(self.vae.dtype)
            image = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0]
            if needs_upcasting:
                self.vae.to(dtype=torch.float16)
            image = self.image_processor.postprocess(image.float(), output_type=output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return ImagePipelineOutput(images=image)
