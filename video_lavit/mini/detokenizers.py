# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Training of the miniature's two detokenizers (keyframe: DDPM loss with a v-prediction target; video: SVD's EDM
loss with v-prediction preconditioning), each preceded by its VAE, all through `transformers.Trainer`.

Simplification (stated in the README): the VAEs are trained here as plain autoencoders on the synthetic frames
(foreground-weighted MSE + a small KL term) instead of being taken from SDXL / SVD, and their `scaling_factor` is
set to `1 / std` of the training latents afterwards.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .modeling import KEYFRAME_SIZE
from .stages import TensorRows, run_trainer, stack_collate

CONDITION_DROPOUT = 0.1
KL_WEIGHT = 1e-6
FOREGROUND_WEIGHT = 10.0
# (steps, batch size, learning rate) of each training run, before `--scale`
KEYFRAME_VAE_SCHEDULE = (1500, 8, 2e-3)
KEYFRAME_UNET_SCHEDULE = (6000, 16, 1e-3)
# the video VAE was under-trained at 1800 steps: 1800 more kept the shape of 78 % of held-out round trips
# instead of 62 % (the blur rounds squares and fills triangles, and every blob is then read as a circle)
VIDEO_VAE_SCHEDULE = (3000, 2, 2e-3)
VIDEO_UNET_SCHEDULE = (1800, 4, 1e-3)
# frames per video-VAE training sample: 2 clips of 4 frames per step rather than 1 of 8 (same cost) -- one scene
# per step left the VAE keeping the colour of 75 % of held-out clips; two, 100 % in half the steps
VIDEO_VAE_CHUNK = 4


def to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """uint8 `[..., H, W, 3]` -> float `[..., 3, H, W]` in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


class AutoencoderTraining(nn.Module):
    """Foreground-weighted MSE reconstruction + a small KL term; `num_frames` > 1 feeds the temporal decoder
    consecutive frames.

    Pixels that differ from the frame's border colour (the shape) weigh `1 + FOREGROUND_WEIGHT` times a background
    pixel: with a plain MSE the shape is a few percent of the pixels, and the small VAEs learned to draw it in the
    average palette colour (the video VAE kept the colour of 29 % of the clips, 96 % with the weighting)."""

    def __init__(self, vae: nn.Module, num_frames: int | None = None, foreground_weight: float = FOREGROUND_WEIGHT):
        super().__init__()
        self.vae = vae
        self.num_frames = num_frames
        self.foreground_weight = foreground_weight

    def forward(self, frames):
        pixels = to_unit_range(frames.flatten(0, 1) if self.num_frames else frames)
        posterior = self.vae.encode(pixels).latent_dist
        latents = posterior.sample()
        kwargs = {"num_frames": self.num_frames} if self.num_frames else {}
        reconstruction = self.vae.decode(latents, **kwargs).sample
        weight = 1.0 + self.foreground_weight * foreground_mask(pixels)
        loss = (weight * (reconstruction - pixels) ** 2).mean() / weight.mean()
        return {"loss": loss + KL_WEIGHT * posterior.kl().mean()}


def foreground_mask(pixels: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """`[N, 3, H, W]` in [-1, 1] -> `[N, 1, H, W]`, 1 where a pixel differs from the median border colour of its
    frame by more than `threshold` in some channel (0.2 ~ 25 grey levels)."""
    border = torch.cat([pixels[..., 0, :], pixels[..., -1, :], pixels[..., :, 0], pixels[..., :, -1]], dim=-1)
    background = border.median(dim=-1).values[..., None, None]
    return ((pixels - background).abs().amax(dim=1, keepdim=True) > threshold).to(pixels.dtype)


@torch.no_grad()
def set_scaling_factor(vae, frames: torch.Tensor) -> float:
    latents = vae.encode(to_unit_range(frames)).latent_dist.mode()
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


class KeyframeDiffusionTraining(nn.Module):
    """Keyframe decoder + UNet2DConditionModel: DDPM loss on VAE latents of the 64-px keyframes, conditioned on the
    visual codes (zeroed with probability `CONDITION_DROPOUT` for classifier-free guidance). The target follows the
    scheduler's `prediction_type`: the noise (`"epsilon"`) or `sqrt(a) * noise - sqrt(1 - a) * latents`
    (`"v_prediction"`).

    The miniature uses v-prediction: with an epsilon target the loss barely depends on the image at high noise,
    where the sampler settles what is drawn, and after 1500 steps the keyframe had the right colour for 22 % of
    held-out scenes (88 % with v-prediction, same steps).

    A UNet with more input than output channels also reads the codes on the patch grid
    (`decoder.spatial_code_map`, dropped together with the other conditions), as the pipeline feeds them."""

    def __init__(self, decoder, unet, scheduler):
        super().__init__()
        self.decoder = decoder
        self.unet = unet
        # noising and the v target come from the scheduler the pipeline samples with
        self.scheduler = scheduler
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {self.prediction_type!r}")

    def forward(self, latents, codes):
        batch = latents.shape[0]
        out = self.decoder(codes=codes)
        keep = (torch.rand(batch) > CONDITION_DROPOUT).float()
        prompt = out.prompt_embeds * keep[:, None, None]
        pooled = out.pooled_prompt_embeds * keep[:, None]
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (batch,))
        noise = torch.randn_like(latents)
        noisy = self.scheduler.add_noise(latents, noise, t)
        if self.unet.config.in_channels > latents.shape[1]:
            code_map = self.decoder.spatial_code_map(codes, tuple(latents.shape[-2:]))
            noisy = torch.cat([noisy, code_map * keep[:, None, None, None]], dim=1)
        size = float(KEYFRAME_SIZE)
        time_ids = torch.tensor([[size, size, 0.0, 0.0, size, size]]).repeat(batch, 1)
        pred = self.unet(noisy, t, encoder_hidden_states=prompt,
                         added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        target = noise if self.prediction_type == "epsilon" else self.scheduler.get_velocity(latents, noise, t)
        return {"loss": F.mse_loss(pred, target)}


class VideoDiffusionTraining(nn.Module):
    """Motion encoder + spatio-temporal UNet with SVD's EDM objective: `ln sigma ~ N(p_mean, p_std)`, inputs
    scaled by `1 / sqrt(sigma^2 + 1)`, v-prediction turned into the denoised latents, loss weighted by
    `(sigma^2 + 1) / sigma^2`. Conditions: keyframe latents (VAE mode, unscaled, as the pipeline feeds them),
    the motion field on the latent grid, and its encoder features; all three zeroed together with probability
    `CONDITION_DROPOUT` (the pipeline's unconditional branch).

    `ln sigma ~ N(1.0, 1.6)` rather than N(0, 1.2): the sampler starts at sigma 700 and the layout of the clip (where
    the shape is, which way it goes) is settled at high noise; with N(0, 1.2) only ~3 % of the training draws had
    sigma > 10 and the miniature's UNet ignored the keyframe and the motion there (from ground-truth keyframes and
    motion, 7 of 12 clips went the right way; 12 of 12 with the shift and the foreground-weighted VAE).

    `latent_weights` (`latent_foreground_weights`) weigh the error of each latent cell: the shape covers a few of the
    64 cells, and with a plain mean the loss is mostly empty background (from ground-truth keyframes and motion, the
    weighting took colour and direction from 14 to 16 of 16 clips)."""

    def __init__(self, unet, motion_encoder, p_mean: float = 1.0, p_std: float = 1.6, fps: int = 6,
                 motion_bucket_id: int = 127, noise_aug_strength: float = 0.02):
        super().__init__()
        self.unet = unet
        self.motion_encoder = motion_encoder
        self.p_mean, self.p_std = p_mean, p_std
        self.time_ids = (float(fps), float(motion_bucket_id), float(noise_aug_strength))
        self.noise_aug_strength = noise_aug_strength

    def forward(self, latents, keyframe_latents, motion, latent_weights=None):
        # latents [B, T, 4, h, w] (scaled), keyframe_latents [B, 4, h, w], motion [B, 2, T, h, w],
        # latent_weights [B, T, 1, h, w] (optional: per-cell weights of the loss)
        batch, frames = latents.shape[:2]
        keep = (torch.rand(batch) > CONDITION_DROPOUT).float()
        features = self.motion_encoder(motion).motion_hidden_states * keep.view(-1, 1, 1, 1)
        key = keyframe_latents * keep.view(-1, 1, 1, 1)
        key = key.unsqueeze(1).expand(-1, frames, -1, -1, -1)
        motion_channels = motion.permute(0, 2, 1, 3, 4) * keep.view(-1, 1, 1, 1, 1)
        sigma = torch.exp(self.p_mean + self.p_std * torch.randn(batch)).view(-1, 1, 1, 1, 1)
        noisy = latents + sigma * torch.randn_like(latents)
        c_in = 1 / (sigma**2 + 1).sqrt()
        unet_input = torch.cat([noisy * c_in, key, motion_channels], dim=2)
        timestep = 0.25 * sigma.log().flatten()
        time_ids = torch.tensor([self.time_ids]).repeat(batch, 1)
        v = self.unet(unet_input, timestep, encoder_hidden_states=features, added_time_ids=time_ids).sample
        denoised = v * (-sigma * c_in) + noisy / (sigma**2 + 1)
        weight = (sigma**2 + 1) / sigma**2
        error = weight * (denoised - latents) ** 2
        if latent_weights is None:
            return {"loss": error.mean()}
        return {"loss": (latent_weights * error).mean() / latent_weights.mean()}


def latent_foreground_weights(frames: torch.Tensor, latent_size: tuple[int, int],
                              foreground_weight: float = FOREGROUND_WEIGHT) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> `[N, 1, h, w]`: `1 + foreground_weight * (share of the latent cell's pixels that are
    the shape)`, the video UNet's counterpart of `AutoencoderTraining`'s foreground weighting."""
    mask = foreground_mask(to_unit_range(frames))
    return 1.0 + foreground_weight * F.adaptive_avg_pool2d(mask, latent_size)


def _schedule(schedule: tuple[int, int, float], scale: float) -> dict:
    steps, batch_size, learning_rate = schedule
    return {"steps": int(steps * scale), "batch_size": batch_size, "learning_rate": learning_rate}


def _codes_rows(keyframe_codes: list[torch.Tensor]) -> torch.Tensor:
    lengths = {len(c) for c in keyframe_codes}
    if len(lengths) != 1:
        raise ValueError(f"the miniature keeps every patch, so keyframes must have one code count, got {lengths}")
    return torch.stack(keyframe_codes)


def train_keyframe_detokenizer(components: dict, model, data: dict, keyframe_codes, work: Path, scale: float,
                               log: dict, seed: int) -> None:
    vae = components["keyframe_vae"].train()
    frames = data["keyframe"]
    log["keyframe_vae"] = run_trainer(AutoencoderTraining(vae), TensorRows({"frames": frames}), stack_collate,
                                      **_schedule(KEYFRAME_VAE_SCHEDULE, scale), seed=seed,
                                      output_dir=str(work / "keyframe_vae"))
    vae.eval().requires_grad_(False)
    factor = set_scaling_factor(vae, frames[:128])
    with torch.no_grad():
        latents = torch.cat([vae.encode(to_unit_range(frames[s : s + 64])).latent_dist.mode()
                             for s in range(0, len(frames), 64)]) * factor
    # the decoder carries its own copy of the tokenizer's codebook
    decoder = components["keyframe_decoder"]
    with torch.no_grad():
        decoder.codebook.weight.copy_(model.model.visual_tokenizer.quantizer.codebook.weight)
    decoder.codebook.requires_grad_(False)
    module = KeyframeDiffusionTraining(decoder.train(), components["keyframe_unet"].train(),
                                       components["keyframe_scheduler"])
    rows = TensorRows({"latents": latents, "codes": _codes_rows(keyframe_codes)})
    log["keyframe_unet"] = run_trainer(module, rows, stack_collate, **_schedule(KEYFRAME_UNET_SCHEDULE, scale),
                                       seed=seed, output_dir=str(work / "keyframe_unet"))
    decoder.eval()
    components["keyframe_unet"].eval()


def train_video_detokenizer(components: dict, model, data: dict, motion_codes, work: Path, scale: float,
                            log: dict, seed: int, chunk: int = VIDEO_VAE_CHUNK) -> None:
    vae = components["video_vae"].train()
    clips = data["clip"]  # [N, 24, 64, 64, 3] uint8
    chunks = clips.unflatten(1, (-1, chunk)).flatten(0, 1)  # [N * 24 / chunk, chunk, H, W, 3]
    log["video_vae"] = run_trainer(AutoencoderTraining(vae, num_frames=chunk), TensorRows({"frames": chunks}),
                                   stack_collate, **_schedule(VIDEO_VAE_SCHEDULE, scale), seed=seed,
                                   output_dir=str(work / "video_vae"))
    vae.eval().requires_grad_(False)
    factor = set_scaling_factor(vae, clips[:16].flatten(0, 1))
    motion_tokenizer = model.model.motion_tokenizer.eval()
    with torch.no_grad():
        latents, keys, motions, weights = [], [], [], []
        for s in range(0, len(clips), 16):
            batch = clips[s : s + 16]
            z = vae.encode(to_unit_range(batch.flatten(0, 1))).latent_dist.mode()
            latents.append(z.unflatten(0, batch.shape[:2]) * factor)
            h, w = z.shape[-2:]
            # the shape covers a few of the 8x8 latent cells; unweighted, the loss is mostly the empty background
            weights.append(latent_foreground_weights(batch.flatten(0, 1), (h, w)).unflatten(0, batch.shape[:2]))
            keys.append(vae.encode(to_unit_range(batch[:, 0])).latent_dist.mode())
            # the detokenizer learns from the motion the LLM will hand it: tokenizer codes, decoded
            motions.append(motion_tokenizer.reconstruct(motion_codes[s : s + 16], size=(h, w)))
    rows = TensorRows({"latents": torch.cat(latents), "keyframe_latents": torch.cat(keys),
                       "motion": torch.cat(motions), "latent_weights": torch.cat(weights)})
    module = VideoDiffusionTraining(components["video_unet"].train(), components["motion_encoder"].train())
    log["video_unet"] = run_trainer(module, rows, stack_collate, **_schedule(VIDEO_UNET_SCHEDULE, scale), seed=seed,
                                    output_dir=str(work / "video_unet"))
    components["video_unet"].eval()
    components["motion_encoder"].eval()


__all__ = [
    "AutoencoderTraining",
    "KeyframeDiffusionTraining",
    "VideoDiffusionTraining",
    "train_keyframe_detokenizer",
    "train_video_detokenizer",
]
