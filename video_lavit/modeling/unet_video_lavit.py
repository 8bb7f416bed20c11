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
"""Video-LaVIT's 3D UNet: Stable Video Diffusion's spatio-temporal UNet conditioned on motion features.

Parameters are exactly those of diffusers' `UNetSpatioTemporalConditionModel` (with 10 input channels). Only
the cross-attention context differs: every frame attends to its own motion tokens, and every spatial position
of the temporal blocks attends to the motion tokens of its (nearest-resampled) grid cell across frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

# DiffusionPipeline.from_pretrained picks a component's loading method by looking the base class names up in the
# component's own module, so ModelMixin must be importable from here.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.transformers.transformer_temporal import (
    TransformerSpatioTemporalModel,
    TransformerTemporalModelOutput,
)
from diffusers.models.unets.unet_spatio_temporal_condition import (
    UNetSpatioTemporalConditionModel,
    UNetSpatioTemporalConditionOutput,
)
from diffusers.utils.torch_utils import maybe_adjust_dtype_for_device


def motion_context_per_position(
    motion_context: torch.Tensor, batch_size: int, num_frames: int, height: int, width: int
) -> torch.Tensor:
    """Temporal cross-attention context of one UNet level.

    Args:
        motion_context: `[batch_size * num_frames, grid_h * grid_w, dim]` per-frame motion tokens on a square grid.
        height, width: spatial size of the level's feature map.
    Returns:
        `[batch_size * height * width, num_frames, dim]`: for each feature-map position, the motion token of
        the nearest grid cell in every frame.
    """
    tokens, dim = motion_context.shape[-2:]
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise ValueError(f"motion context must hold a square grid of tokens, got {tokens} tokens per frame")
    grid_map = motion_context.transpose(1, 2).reshape(batch_size * num_frames, dim, grid, grid)
    # A fractional scale factor, not a target size: it reproduces the original's nearest-neighbour source
    # indices exactly (PyTorch maps destination i to floor(i / scale) for a given scale factor).
    grid_map = F.interpolate(grid_map, scale_factor=(height / grid, width / grid), mode="nearest")
    if grid_map.shape[-2:] != (height, width):
        raise ValueError(f"motion grid {grid}x{grid} cannot be resampled to the feature map {height}x{width}")
    grid_map = grid_map.reshape(batch_size, num_frames, dim, height * width).permute(0, 3, 1, 2)
    return grid_map.reshape(batch_size * height * width, num_frames, dim)


class VideoLavitTransformerSpatioTemporalModel(TransformerSpatioTemporalModel):
    """`TransformerSpatioTemporalModel` whose cross-attention reads motion features: the spatial blocks get the
    frame's own tokens, the temporal blocks the per-position motion sequence (SVD instead broadcasts frame 0's
    context everywhere). Same parameters as the parent."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        image_only_indicator: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        r"""
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size * num_frames, channels, height, width)`)
            encoder_hidden_states (`torch.Tensor` of shape `(batch_size * num_frames, grid_h * grid_w, dim)`):
                Motion tokens of each frame.
            image_only_indicator (`torch.Tensor` of shape `(batch_size, num_frames)`)
        """
        batch_frames, _, height, width = hidden_states.shape
        num_frames = image_only_indicator.shape[-1]
        batch_size = batch_frames // num_frames
        if encoder_hidden_states is None or encoder_hidden_states.shape[0] != batch_frames:
            raise ValueError(
                "the motion context must hold one token set per frame: expected first dimension "
                f"{batch_frames}, got {None if encoder_hidden_states is None else tuple(encoder_hidden_states.shape)}"
            )
        time_context = motion_context_per_position(encoder_hidden_states, batch_size, num_frames, height, width)

        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        inner_dim = hidden_states.shape[1]
        hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch_frames, height * width, inner_dim)
        hidden_states = self.proj_in(hidden_states)

        frame_index = torch.arange(num_frames, device=hidden_states.device).repeat(batch_size)
        frame_emb = self.time_pos_embed(self.time_proj(frame_index).to(dtype=hidden_states.dtype))[:, None, :]

        for block, temporal_block in zip(self.transformer_blocks, self.temporal_transformer_blocks):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, None, encoder_hidden_states, None
                )
            else:
                hidden_states = block(hidden_states, encoder_hidden_states=encoder_hidden_states)
            hidden_states_mix = temporal_block(
                hidden_states + frame_emb, num_frames=num_frames, encoder_hidden_states=time_context
            )
            hidden_states = self.time_mixer(
                x_spatial=hidden_states, x_temporal=hidden_states_mix, image_only_indicator=image_only_indicator
            )

        hidden_states = self.proj_out(hidden_states)
        hidden_states = hidden_states.reshape(batch_frames, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        output = hidden_states + residual
        if not return_dict:
            return (output,)
        return TransformerTemporalModelOutput(sample=output)


class VideoLavitUNetSpatioTemporalConditionModel(UNetSpatioTemporalConditionModel):
    r"""
    The Video-LaVIT video detokenizer UNet. Same configuration fields and parameters as diffusers'
    [`UNetSpatioTemporalConditionModel`]; defaults are the released values (SVD-xt with `in_channels=10`:
    4 noisy latent + 4 keyframe latent + 2 motion channels; 1,524,628,842 parameters).

    `encoder_hidden_states` is the per-frame motion context `[batch, num_frames, tokens, cross_attention_dim]`
    from [`VideoLavitMotionConditionEncoder`]; it is not repeated over frames.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = 96,
        in_channels: int = 10,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ),
        up_block_types: tuple[str, ...] = (
            "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
        ),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int | tuple[int] = 2,
        cross_attention_dim: int | tuple[int] = 1024,
        transformer_layers_per_block: int | tuple[int, tuple[tuple]] = 1,
        num_attention_heads: int | tuple[int, ...] = (5, 10, 20, 20),
        num_frames: int = 25,
    ):
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            num_attention_heads=num_attention_heads,
            num_frames=num_frames,
        )
        # The stock blocks build stock transformers; only their forward changes, so swapping the class keeps
        # every parameter name and shape of the SVD checkpoint layout.
        for module in self.modules():
            if type(module) is TransformerSpatioTemporalModel:
                module.__class__ = VideoLavitTransformerSpatioTemporalModel

    @property
    def spatial_multiple(self) -> int:
        """Latent height/width must be multiples of this (2 ** number of down-samplings)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = True,
    ):
        r"""
        Args:
            sample (`torch.Tensor` of shape `(batch_size, num_frames, in_channels, height, width)`):
                `[noisy latents (4) | keyframe latents (4) | motion (2)]` on the channel axis.
            timestep (`torch.Tensor`, `float` or `int`): continuous EDM timestep `0.25 * ln(sigma)`.
            encoder_hidden_states (`torch.Tensor` of shape `(batch_size, num_frames, tokens, cross_attention_dim)`):
                Motion features of every frame.
            added_time_ids (`torch.Tensor` of shape `(batch_size, 3)`): `(fps, motion_bucket_id, noise_aug_strength)`.
            return_dict (`bool`, defaults to `True`): return a `UNetSpatioTemporalConditionOutput`.
        Returns:
            `UNetSpatioTemporalConditionOutput` (or a tuple) with `sample` `(batch_size, num_frames, out_channels,
            height, width)`.
        """
        batch_size, num_frames = sample.shape[:2]
        if encoder_hidden_states.ndim != 4 or tuple(encoder_hidden_states.shape[:2]) != (batch_size, num_frames):
            raise ValueError(
                "encoder_hidden_states must be the per-frame motion context [batch, frames, tokens, dim] = "
                f"[{batch_size}, {num_frames}, tokens, dim], got {tuple(encoder_hidden_states.shape)}"
            )
        forward_upsample_size = any(s % 2**self.num_upsamplers != 0 for s in sample.shape[-2:])
        upsample_size = None

        timesteps = timestep
        if not torch.is_tensor(timesteps):
            dtype = maybe_adjust_dtype_for_device(
                torch.float64 if isinstance(timestep, float) else torch.int64, sample.device
            )
            timesteps = torch.tensor([timesteps], dtype=dtype, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch_size)

        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape((batch_size, -1)).to(emb.dtype)
        emb = emb + self.add_embedding(time_embeds)

        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0, output_size=batch_size * num_frames)
        encoder_hidden_states = encoder_hidden_states.flatten(0, 1)

        sample = self.conv_in(sample)
        image_only_indicator = torch.zeros(batch_size, num_frames, dtype=sample.dtype, device=sample.device)
        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if getattr(downsample_block, "has_cross_attention", False) else {}
            sample, res_samples = downsample_block(
                hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **kwargs
            )
            down_block_res_samples += res_samples

        sample = self.mid_block(
            hidden_states=sample,
            temb=emb,
            encoder_hidden_states=encoder_hidden_states,
            image_only_indicator=image_only_indicator,
        )

        for i, upsample_block in enumerate(self.up_blocks):
            res_samples = down_block_res_samples[-len(upsample_block.resnets) :]
            down_block_res_samples = down_block_res_samples[: -len(upsample_block.resnets)]
            if i < len(self.up_blocks) - 1 and forward_upsample_size:
                upsample_size = down_block_res_samples[-1].shape[2:]
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if getattr(upsample_block, "has_cross_attention", False) else {}
            sample = upsample_block(
                hidden_states=sample,
                temb=emb,
                res_hidden_states_tuple=res_samples,
                upsample_size=upsample_size,
                image_only_indicator=image_only_indicator,
                **kwargs,
            )

        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)


__all__ = [
    "VideoLavitTransformerSpatioTemporalModel",
    "VideoLavitUNetSpatioTemporalConditionModel",
    "motion_context_per_position",
]
