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
"""Motion condition encoder of the Video-LaVIT video detokenizer.

A dense motion field (one 2-channel displacement map per frame) is squashed to a fixed token grid and encoded
by factorised spatial/temporal transformer blocks into one cross-attention context per frame. Its output is
the `encoder_hidden_states` of [`VideoLavitUNetSpatioTemporalConditionModel`].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class VideoLavitMotionConditionEncoderOutput(BaseOutput):
    """
    Args:
        motion_hidden_states (`torch.Tensor` of shape `(batch_size, num_frames, grid_h * grid_w, out_channels)`):
            Per-frame motion features, the UNet's cross-attention context.
    """

    motion_hidden_states: torch.Tensor = None


class VideoLavitMotionAttention(nn.Module):
    """Multi-head self-attention with a fused bias-free qkv projection plus learned query/value biases (the key
    bias is fixed at zero, as in BEiT)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, scale: float | None = None, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"hidden size {dim} must be divisible by the number of heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = scale if scale is not None else self.head_dim**-0.5
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[N, L, dim]` -> `[N, L, dim]` (attention over the L axis)."""
        n, length, dim = hidden_states.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(hidden_states, self.qkv.weight, bias)
        q, k, v = qkv.reshape(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=self.scale
        )
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class VideoLavitMotionMLP(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(hidden_states))))


class VideoLavitMotionConditionBlock(nn.Module):
    """Pre-LN block: attention over the tokens of each frame, then over the frames of each token, then MLP."""

    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, attention_scale, layer_norm_eps, dropout, attention_dropout):
        super().__init__()
        self.norm0 = FP32LayerNorm(dim, eps=layer_norm_eps)
        self.spatial_attention = VideoLavitMotionAttention(dim, num_heads, qkv_bias, attention_scale, attention_dropout)
        self.norm1 = FP32LayerNorm(dim, eps=layer_norm_eps)
        self.temporal_attention = VideoLavitMotionAttention(dim, num_heads, qkv_bias, attention_scale, attention_dropout)
        self.norm2 = FP32LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = VideoLavitMotionMLP(dim, int(dim * mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`[B, T, N, dim]` -> `[B, T, N, dim]`."""
        b, t, n, c = hidden_states.shape
        x = hidden_states.reshape(b * t, n, c)
        x = x + self.drop(self.spatial_attention(self.norm0(x)))
        x = x.reshape(b, t, n, c).transpose(1, 2).reshape(b * n, t, c)
        x = x + self.drop(self.temporal_attention(self.norm1(x)))
        x = x + self.mlp(self.norm2(x))
        return x.reshape(b, n, t, c).transpose(1, 2)


class VideoLavitMotionConditionEncoder(ModelMixin, ConfigMixin):
    r"""
    Encodes a motion field `[B, 2, T, h, w]` (detokenizer scale, any `h, w`) into per-frame motion features
    `[B, T, grid_h * grid_w, out_channels]`: the field is bicubic-resized (in float32) to the fixed token grid,
    each cell's displacement is projected to `hidden_size`, a learned spatial position embedding is added, and
    `num_layers` factorised spatio-temporal blocks plus a final LayerNorm and projection follow. Defaults are
    the released Video-LaVIT v1 values (51,095,040 parameters).

    Args:
        in_channels (`int`, defaults to 2): Channels of the motion field (x, y displacement).
        out_channels (`int`, defaults to 1024): Width of the output features (the UNet's `cross_attention_dim`).
        hidden_size (`int`, defaults to 512): Width of the transformer blocks.
        num_attention_heads (`int`, defaults to 8): Heads of the spatial and temporal attention.
        num_layers (`int`, defaults to 12): Number of spatio-temporal blocks.
        grid_size (`tuple[int, int]`, defaults to `(16, 16)`): Token grid the motion field is resized to.
        mlp_ratio (`float`, defaults to 4.0): MLP hidden size is `int(hidden_size * mlp_ratio)`.
        qkv_bias (`bool`, defaults to `True`): Learned query and value biases.
        attention_scale (`float`, *optional*): Attention logit scale, `head_dim ** -0.5` when `None`.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon (LayerNorms run in float32).
        dropout (`float`, defaults to 0.0): Dropout after attention/MLP outputs (training only).
        attention_dropout (`float`, defaults to 0.0): Dropout on attention probabilities (training only).
        add_temporal_position_embedding (`bool`, defaults to `False`): Add a learned per-frame embedding
            (`temp_pos`, `[1, num_frames, hidden_size]`); the release has none.
        num_frames (`int`, defaults to 24): Rows of the temporal position embedding when it is used.
        resample_mode (`str`, defaults to `"bicubic"`): Interpolation used to bring the field to `grid_size`.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["VideoLavitMotionConditionBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 1024,
        hidden_size: int = 512,
        num_attention_heads: int = 8,
        num_layers: int = 12,
        grid_size: tuple[int, int] = (16, 16),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attention_scale: float | None = None,
        layer_norm_eps: float = 1e-5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        add_temporal_position_embedding: bool = False,
        num_frames: int = 24,
        resample_mode: str = "bicubic",
    ):
        super().__init__()
        grid_h, grid_w = grid_size
        self.in_proj = nn.Linear(in_channels, hidden_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid_h * grid_w, hidden_size))
        self.temp_pos = (
            nn.Parameter(torch.zeros(1, num_frames, hidden_size)) if add_temporal_position_embedding else None
        )
        self.blocks = nn.ModuleList(
            VideoLavitMotionConditionBlock(
                hidden_size, num_attention_heads, mlp_ratio, qkv_bias, attention_scale, layer_norm_eps, dropout,
                attention_dropout,
            )
            for _ in range(num_layers)
        )
        self.norm = FP32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.out_proj = nn.Linear(hidden_size, out_channels)
        self.gradient_checkpointing = False
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.temp_pos is not None:
            nn.init.trunc_normal_(self.temp_pos, std=0.02)

    def resize_motion(self, motion: torch.Tensor) -> torch.Tensor:
        """Resample `motion` `[B, C, T, h, w]` to the token grid `[B, C, T, grid_h, grid_w]` (float32 math)."""
        if motion.ndim != 5 or motion.shape[1] != self.config.in_channels:
            raise ValueError(
                f"motion must have shape [batch, {self.config.in_channels}, frames, height, width], "
                f"got {tuple(motion.shape)}"
            )
        b, c, t, h, w = motion.shape
        frames = motion.transpose(1, 2).reshape(b * t, c, h, w).float()
        frames = F.interpolate(frames, size=tuple(self.config.grid_size), mode=self.config.resample_mode)
        return frames.reshape(b, t, c, *frames.shape[-2:]).transpose(1, 2).to(motion.dtype)

    def forward(self, motion: torch.Tensor, return_dict: bool = True):
        r"""
        Args:
            motion (`torch.Tensor` of shape `(batch_size, in_channels, num_frames, height, width)`):
                Motion field at any resolution (the pipeline passes the latent resolution).
        Returns:
            [`VideoLavitMotionConditionEncoderOutput`] or a tuple holding `motion_hidden_states`
            `(batch_size, num_frames, grid_h * grid_w, out_channels)`.
        """
        grid = self.resize_motion(motion)
        b, c, t, gh, gw = grid.shape
        tokens = grid.permute(0, 2, 3, 4, 1).reshape(b, t, gh * gw, c).to(self.in_proj.weight.dtype)
        hidden_states = self.in_proj(tokens) + self.pos_embed.unsqueeze(0)
        if self.temp_pos is not None:
            if t > self.temp_pos.shape[1]:
                raise ValueError(f"motion has {t} frames but the temporal position embedding covers {self.temp_pos.shape[1]}")
            hidden_states = hidden_states + self.temp_pos[:, :t].unsqueeze(2)
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states)
            else:
                hidden_states = block(hidden_states)
        hidden_states = self.out_proj(self.norm(hidden_states))
        if not return_dict:
            return (hidden_states,)
        return VideoLavitMotionConditionEncoderOutput(motion_hidden_states=hidden_states)


__all__ = ["VideoLavitMotionConditionEncoder", "VideoLavitMotionConditionEncoderOutput"]
