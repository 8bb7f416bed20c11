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
"""Video-LaVIT motion tokenizer: a spatio-temporal transformer VQ-VAE turning a 24-frame clip of motion vectors
`[B, 2, 24, 20, 36]` into 135 discrete codes and back."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from .configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig

logger = logging.get_logger(__name__)

# Released LLM vocabulary layout (32000 text + 2 image markers + 16384 visual codes, then the motion block).
MOTION_START_TOKEN_ID = 48386
MOTION_END_TOKEN_ID = 48387
MOTION_TOKEN_OFFSET = 48388


@dataclass
class VideoLavitMotionTokenizerEncoderOutput(ModelOutput):
    r"""
    token_ids (`torch.LongTensor` of shape `(batch_size, num_motion_tokens)`):
        Codebook indices in `(t, h, w)` row-major order (135 per clip when released).
    quantized (`torch.FloatTensor` of shape `(batch_size, t, h, w, code_dim)`):
        Codebook rows selected for every cell of the token grid.
    latents (`torch.FloatTensor` of shape `(batch_size, t, h, w, code_dim)`):
        Encoder output projected to the code dimension, before l2 normalisation.
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, t, h, w, hidden_size)`):
        Encoder output after its final LayerNorm.
    """

    token_ids: torch.LongTensor | None = None
    quantized: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


@dataclass
class VideoLavitMotionTokenizerOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, returned when `return_loss=True`):
        `reconstruction_loss + commitment_cost * commitment_loss` (+ the codebook loss when the codebook is learned
        by gradient instead of EMA).
    reconstruction (`torch.FloatTensor` of shape `(batch_size, in_channels, num_frames, height, width)`):
        Decoder output, in the tokenizer's (x10) motion scale.
    token_ids (`torch.LongTensor` of shape `(batch_size, num_motion_tokens)`):
        Codebook indices, `(t, h, w)` row-major.
    reconstruction_loss (`torch.FloatTensor` of shape `()`):
        Mean squared error between `reconstruction` and the input.
    commitment_loss (`torch.FloatTensor` of shape `()`):
        Mean squared distance between the l2-normalised encoder latents and their (stop-gradient) codes.
    codebook_usage (`torch.FloatTensor` of shape `()`):
        Fraction of the codebook used by this batch.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    token_ids: torch.LongTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_usage: torch.FloatTensor | None = None


class VideoLavitMotionLayerNorm(nn.LayerNorm):
    """LayerNorm evaluated in float32 and cast back, as the original does for reduced-precision weights."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = hidden_states.dtype
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        out = F.layer_norm(hidden_states.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(dtype)


class VideoLavitMotionAttention(nn.Module):
    """Multi-head self-attention with a fused bias-free `qkv` projection and separate query/value biases (the key
    bias is identically zero), as in EVA/BEiT."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        if config.qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(config.hidden_size))
            self.v_bias = nn.Parameter(torch.zeros(config.hidden_size))
        else:
            self.q_bias = None
            self.v_bias = None
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states`: `(sequences, length, hidden_size)` -> same shape."""
        n, length, dim = hidden_states.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(hidden_states, self.qkv.weight, bias)
        q, k, v = qkv.view(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=self.scaling
        )
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class VideoLavitMotionMLP(nn.Module):
    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class VideoLavitMotionTokenizerBlock(GradientCheckpointingLayer):
    """Factorised spatio-temporal transformer block: attention within each frame, then attention along time at
    each spatial site (bidirectional), then a feed-forward layer; all pre-norm with residuals."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.spatial_norm = VideoLavitMotionLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.spatial_attention = VideoLavitMotionAttention(config)
        self.temporal_norm = VideoLavitMotionLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.temporal_attention = VideoLavitMotionAttention(config)
        self.mlp_norm = VideoLavitMotionLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VideoLavitMotionMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states`: `(batch, t, h * w, hidden_size)` -> same shape."""
        b, t, s, c = hidden_states.shape
        x = hidden_states.reshape(b * t, s, c)
        x = x + self.spatial_attention(self.spatial_norm(x))
        x = x.reshape(b, t, s, c).transpose(1, 2).reshape(b * s, t, c)
        x = x + self.temporal_attention(self.temporal_norm(x))
        x = x + self.mlp(self.mlp_norm(x))
        return x.reshape(b, s, t, c).transpose(1, 2)


class VideoLavitMotionDownsample(nn.Module):
    """Explicit (asymmetric) zero padding followed by an unpadded strided Conv3d on channels-last input."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig, stride, padding):
        super().__init__()
        self.padding = tuple(int(p) for p in padding)
        self.conv = nn.Conv3d(
            config.hidden_size, config.hidden_size, config.downsample_kernel_size, stride=tuple(stride), padding=0
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(batch, t, h, w, hidden)` -> `(batch, t', h', w', hidden)`."""
        x = F.pad(hidden_states.permute(0, 4, 1, 2, 3), self.padding, mode="constant", value=0.0)
        return self.conv(x).permute(0, 2, 3, 4, 1)


class VideoLavitMotionUpsample(nn.Module):
    """Nearest-neighbour up-sampling (in float32) followed by a `padding=1` Conv3d, channels-first."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig, scale_factor):
        super().__init__()
        self.scale_factor = tuple(float(s) for s in scale_factor)
        kernel = config.downsample_kernel_size
        self.conv = nn.Conv3d(config.hidden_size, config.hidden_size, kernel, stride=1, padding=kernel // 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(batch, hidden, t, h, w)` -> `(batch, hidden, t*st, h*sh, w*sw)`."""
        x = F.interpolate(hidden_states.float(), scale_factor=self.scale_factor, mode="nearest")
        return self.conv(x.to(hidden_states.dtype))


class VideoLavitMotionEncoder(nn.Module):
    """Motion `(batch, in_channels, T, H, W)` -> features `(batch, t, h, w, hidden_size)` on the token grid."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.config = config
        self.in_proj = nn.Linear(config.in_channels, config.hidden_size)
        self.spatial_position_embedding = nn.Parameter(torch.zeros(1, config.height * config.width, config.hidden_size))
        self.temporal_position_embedding = nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
        self.layers = nn.ModuleList(
            [VideoLavitMotionTokenizerBlock(config) for _ in range(sum(config.encoder_blocks_per_stage))]
        )
        self.downsamplers = nn.ModuleList(
            [
                VideoLavitMotionDownsample(config, stride, padding)
                for stride, padding in zip(config.downsample_strides, config.downsample_paddings)
            ]
        )
        self.norm = VideoLavitMotionLayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, motion_vectors: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = motion_vectors.shape
        x = self.in_proj(motion_vectors.permute(0, 2, 3, 4, 1)).reshape(b, t, h * w, -1)
        x = x + self.spatial_position_embedding.unsqueeze(0) + self.temporal_position_embedding.unsqueeze(2)
        first = 0
        for n_blocks, downsample in zip(self.config.encoder_blocks_per_stage, self.downsamplers):
            for layer in self.layers[first : first + n_blocks]:
                x = layer(x)
            first += n_blocks
            x = downsample(x.reshape(b, t, h, w, -1))
            t, h, w = x.shape[1:4]
            x = x.reshape(b, t, h * w, -1)
        return self.norm(x).reshape(b, t, h, w, -1)


class VideoLavitMotionDecoder(nn.Module):
    """Code vectors `(batch, t, h, w, code_dim)` -> features `(batch, T, H, W, hidden_size)`; no position
    embeddings, as released."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.config = config
        self.in_proj = nn.Linear(config.code_dim, config.hidden_size)
        self.upsamplers = nn.ModuleList(
            [VideoLavitMotionUpsample(config, scale) for scale in config.upsample_scale_factors]
        )
        self.layers = nn.ModuleList(
            [VideoLavitMotionTokenizerBlock(config) for _ in range(sum(config.decoder_blocks_per_stage))]
        )
        self.norm = VideoLavitMotionLayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        b = quantized.shape[0]
        x = self.in_proj(quantized)
        first = 0
        for n_blocks, upsample in zip(self.config.decoder_blocks_per_stage, self.upsamplers):
            x = upsample(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
            t, h, w = x.shape[1:4]
            x = x.reshape(b, t, h * w, -1)
            for layer in self.layers[first : first + n_blocks]:
                x = layer(x)
            first += n_blocks
            x = x.reshape(b, t, h, w, -1)
        return self.norm(x)


class VideoLavitMotionProjection(nn.Module):
    """Linear -> Tanh -> Linear head (the original's `encode_task_layer` / `decode_task_layer`)."""

    def __init__(self, hidden_size: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, out_features)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(hidden_states)))


class VideoLavitMotionVectorQuantizer(nn.Module):
    """Nearest-code lookup with an l2-normalised query against the stored codebook (`|z|^2 + |e|^2 - 2 z.e`),
    plus the EMA codebook update used in training (the codebook is kept on the unit sphere, paper Eq. 2)."""

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.code_dim = config.code_dim
        self.decay = config.ema_decay
        self.epsilon = config.ema_epsilon
        self.dead_code_threshold = config.ema_dead_code_threshold
        self.embedding = nn.Embedding(config.codebook_size, config.code_dim)
        self.register_buffer("ema_cluster_size", torch.ones(config.codebook_size))
        self.register_buffer("ema_embedding_sum", torch.zeros(config.codebook_size, config.code_dim))

    def nearest_codes(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`latents` `(..., code_dim)` -> (l2-normalised latents, code indices `(...)`)."""
        z = F.normalize(latents, p=2, dim=-1)
        flat = z.reshape(-1, self.code_dim)
        codebook = self.embedding.weight.to(flat.dtype)
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * flat @ codebook.t()
        )
        return z, distances.argmin(dim=1).reshape(latents.shape[:-1])

    @torch.no_grad()
    def ema_update(self, normalized_latents: torch.Tensor, indices: torch.Tensor) -> None:
        """Move every code used in this batch towards the mean of its assigned (l2-normalised) latents."""
        flat = normalized_latents.reshape(-1, self.code_dim).float()
        one_hot = F.one_hot(indices.reshape(-1), self.codebook_size).float()
        counts = one_hot.sum(0)
        sums = one_hot.t() @ flat
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        # Statistics are updated in float32 whatever the storage dtype (mixed-precision training keeps them fp32).
        cluster_size = self.ema_cluster_size.float() * self.decay + counts * (1 - self.decay)
        embedding_sum = self.ema_embedding_sum.float() * self.decay + sums * (1 - self.decay)
        self.ema_cluster_size.copy_(cluster_size)
        self.ema_embedding_sum.copy_(embedding_sum)
        total = cluster_size.sum()
        # Laplace smoothing keeps never-used codes finite instead of dividing by ~0.
        smoothed = (cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        codebook = F.normalize(embedding_sum / smoothed.unsqueeze(1), p=2, dim=-1)
        if self.dead_code_threshold > 0:
            dead = cluster_size < self.dead_code_threshold
            if dead.any():
                # restart on random latents of this batch, with statistics as if each had been seen once
                picks = flat[torch.randint(0, flat.shape[0], (int(dead.sum()),), device=flat.device)]
                codebook[dead] = picks
                self.ema_cluster_size[dead] = 1.0
                self.ema_embedding_sum[dead] = picks.to(self.ema_embedding_sum.dtype)
        self.embedding.weight.data.copy_(codebook.to(self.embedding.weight.dtype))


class VideoLavitMotionTokenizerPreTrainedModel(PreTrainedModel):
    config: VideoLavitMotionTokenizerConfig
    base_model_prefix = "motion_tokenizer"
    main_input_name = "motion_vectors"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["VideoLavitMotionTokenizerBlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv3d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VideoLavitMotionAttention):
            if module.q_bias is not None:
                init.zeros_(module.q_bias)
                init.zeros_(module.v_bias)
        elif isinstance(module, VideoLavitMotionEncoder):
            init.trunc_normal_(module.spatial_position_embedding, std=std)
            init.trunc_normal_(module.temporal_position_embedding, std=std)
        elif isinstance(module, VideoLavitMotionVectorQuantizer):
            weight = module.embedding.weight
            init.normal_(weight)
            init.copy_(weight, F.normalize(weight, p=2, dim=-1))
            init.ones_(module.ema_cluster_size)
            init.copy_(module.ema_embedding_sum, weight)


class VideoLavitMotionTokenizer(VideoLavitMotionTokenizerPreTrainedModel):
    r"""
    The Video-LaVIT motion tokenizer. [`encode`] maps a motion clip `(batch, 2, 24, 20, 36)` (x/y displacement,
    normalised with std/10 as produced by the video processor) to `(batch, 135)` code ids in `(t, h, w)` order;
    [`decode`] maps ids back to motion; [`reconstruct`] gives the resized, rescaled motion the video detokenizer
    consumes; `forward` is the training step (reconstruction + commitment loss, EMA codebook update).
    """

    def __init__(self, config: VideoLavitMotionTokenizerConfig):
        super().__init__(config)
        self.encoder = VideoLavitMotionEncoder(config)
        self.quant_projection = VideoLavitMotionProjection(config.hidden_size, config.code_dim)
        self.quantizer = VideoLavitMotionVectorQuantizer(config)
        self.decoder = VideoLavitMotionDecoder(config)
        self.output_projection = VideoLavitMotionProjection(config.hidden_size, config.out_channels)
        if config.use_ema_codebook:
            # The EMA rule owns the codebook; keeping it out of autograd also keeps optimizers off it.
            self.quantizer.embedding.weight.requires_grad_(False)
        self.post_init()

    # ----------------------------------------------------------------------------------------- input checks
    def _check_motion(self, motion_vectors: torch.Tensor) -> None:
        c = self.config
        expected = (c.in_channels, c.num_frames, c.height, c.width)
        if not isinstance(motion_vectors, torch.Tensor):
            raise TypeError(f"motion_vectors must be a torch.Tensor, got {type(motion_vectors).__name__}")
        if not motion_vectors.is_floating_point():
            raise TypeError(f"motion_vectors must be a floating-point tensor, got dtype {motion_vectors.dtype}")
        if motion_vectors.dim() != 5 or tuple(motion_vectors.shape[1:]) != expected:
            raise ValueError(
                f"motion_vectors must have shape (batch, {', '.join(map(str, expected))}) = (batch, channels, frames, "
                f"height, width), got {tuple(motion_vectors.shape)}"
            )

    def _check_token_ids(self, token_ids: torch.Tensor) -> None:
        n, k = self.config.num_motion_tokens, self.config.codebook_size
        if not isinstance(token_ids, torch.Tensor):
            raise TypeError(f"token_ids must be a torch.Tensor, got {type(token_ids).__name__}")
        if token_ids.is_floating_point() or token_ids.dtype == torch.bool:
            raise TypeError(f"token_ids must be an integer tensor, got dtype {token_ids.dtype}")
        if token_ids.dim() != 2 or token_ids.shape[1] != n:
            raise ValueError(
                f"token_ids must have shape (batch, {n}) ({n} motion tokens per clip), got {tuple(token_ids.shape)}"
            )
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= k):
            raise ValueError(
                f"token_ids must lie in [0, {k - 1}] (codebook size {k}), got values in "
                f"[{int(token_ids.min())}, {int(token_ids.max())}]"
            )

    # ---------------------------------------------------------------------------------------- tokenisation
    def _clip_motion(self, motion_vectors: torch.Tensor) -> torch.Tensor:
        # Rare large displacements otherwise dominate the MSE and the encoder collapses onto them (see the config).
        clip = self.config.input_clip_value
        return motion_vectors if clip is None else motion_vectors.clamp(-clip, clip)

    def _project(self, features: torch.Tensor) -> torch.Tensor:
        # The original runs this head outside autocast, in the head's own dtype; the code choice depends on it.
        with torch.autocast(device_type=features.device.type, enabled=False):
            return self.quant_projection(features.to(self.quant_projection.fc1.weight.dtype))

    def quantize(self, motion_vectors: torch.Tensor) -> VideoLavitMotionTokenizerEncoderOutput:
        """Encode and quantise `motion_vectors` `(batch, in_channels, T, H, W)`; returns ids, code vectors and the
        intermediate features (see [`VideoLavitMotionTokenizerEncoderOutput`])."""
        self._check_motion(motion_vectors)
        motion_vectors = self._clip_motion(motion_vectors.to(self.encoder.in_proj.weight.dtype))
        features = self.encoder(motion_vectors)
        latents = self._project(features)
        _, indices = self.quantizer.nearest_codes(latents)
        return VideoLavitMotionTokenizerEncoderOutput(
            token_ids=indices.reshape(indices.shape[0], -1),
            quantized=self.quantizer.embedding(indices),
            latents=latents,
            last_hidden_state=features,
        )

    @torch.no_grad()
    def encode(self, motion_vectors: torch.Tensor) -> torch.LongTensor:
        """`motion_vectors` `(batch, 2, 24, 20, 36)` -> code ids `(batch, 135)` in `(t, h, w)` row-major order
        (sizes as configured)."""
        return self.quantize(motion_vectors).token_ids

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """Code vectors `(batch, t, h, w, code_dim)` -> motion `(batch, out_channels, T, H, W)` (x10 scale)."""
        grid = tuple(self.config.token_grid_size) + (self.config.code_dim,)
        if quantized.dim() != 5 or tuple(quantized.shape[1:]) != grid:
            raise ValueError(
                f"quantized must have shape (batch, {', '.join(map(str, grid))}), got {tuple(quantized.shape)}"
            )
        features = self.decoder(quantized.to(self.decoder.in_proj.weight.dtype))
        return self.output_projection(features).permute(0, 4, 1, 2, 3)

    @torch.no_grad()
    def decode(self, token_ids: torch.LongTensor) -> torch.FloatTensor:
        """Code ids `(batch, 135)` -> motion `(batch, 2, 24, 20, 36)` in the tokenizer's (x10) scale."""
        self._check_token_ids(token_ids)
        quantized = self.quantizer.embedding(token_ids.long()).reshape(
            token_ids.shape[0], *self.config.token_grid_size, self.config.code_dim
        )
        return self.decode_latents(quantized)

    def _resize_and_rescale(self, motion: torch.Tensor, size) -> torch.Tensor:
        if len(size) != 2 or any(int(s) <= 0 for s in size):
            raise ValueError(f"size must be (height, width) with positive entries, got {tuple(size)}")
        b, c, t, h, w = motion.shape
        frames = motion.transpose(1, 2).reshape(b * t, c, h, w).float()
        frames = F.interpolate(frames, size=(int(size[0]), int(size[1])), mode="bicubic", align_corners=False)
        frames = frames.reshape(b, t, c, int(size[0]), int(size[1])).transpose(1, 2)
        return (frames / self.config.motion_scale_factor).to(motion.dtype)

    @torch.no_grad()
    def reconstruct(self, token_ids: torch.LongTensor, size: tuple[int, int] | None = None) -> torch.FloatTensor:
        """Motion for the video detokenizer: decode `token_ids` `(batch, 135)`, resize every frame bicubically to
        `size = (height, width)` (default: the tokenizer grid), and divide by `motion_scale_factor`.
        Returns `(batch, 2, num_frames, height, width)`."""
        size = size if size is not None else (self.config.height, self.config.width)
        return self._resize_and_rescale(self.decode(token_ids), size)

    @torch.no_grad()
    def reconstruct_motion(
        self, motion_vectors: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.FloatTensor:
        """Same as [`reconstruct`] starting from motion `(batch, 2, T, H, W)` (encode, quantise, decode)."""
        return self.reconstruct(self.encode(motion_vectors), size)

    def get_codebook_entries(self, token_ids: torch.LongTensor) -> torch.FloatTensor:
        """Code ids `(...)` -> code vectors `(..., code_dim)`."""
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= self.config.codebook_size):
            raise ValueError(
                f"token_ids must lie in [0, {self.config.codebook_size - 1}], got values in "
                f"[{int(token_ids.min())}, {int(token_ids.max())}]"
            )
        return self.quantizer.embedding(token_ids.long())

    # ------------------------------------------------------------------------------------------- training
    def forward(
        self, motion_vectors: torch.Tensor, return_loss: bool = True, return_dict: bool | None = None
    ) -> VideoLavitMotionTokenizerOutput | tuple:
        r"""
        Tokenise and reconstruct `motion_vectors` `(batch, in_channels, T, H, W)` with a straight-through estimator.
        With `config.input_clip_value` set, both the encoder input and the reconstruction target are clamped to it.
        In training mode with `config.use_ema_codebook` the codebook is updated by EMA (`config.ema_decay`).

        Returns:
            [`VideoLavitMotionTokenizerOutput`] with `loss` (MSE reconstruction + `commitment_cost` x commitment),
            `reconstruction`, `token_ids` and the separate loss terms.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_motion(motion_vectors)
        target = self._clip_motion(motion_vectors.to(self.encoder.in_proj.weight.dtype))
        features = self.encoder(target)
        latents = self._project(features)
        normalized, indices = self.quantizer.nearest_codes(latents)
        codes = self.quantizer.embedding(indices).to(normalized.dtype)
        if self.training and self.config.use_ema_codebook:
            self.quantizer.ema_update(normalized.detach(), indices)
        # Straight-through: the decoder sees the code, gradients flow to the encoder as if it saw the latent.
        quantized = normalized + (codes - normalized).detach()
        reconstruction = self.output_projection(self.decoder(quantized)).permute(0, 4, 1, 2, 3)

        loss = rec_loss = commit_loss = None
        if return_loss:
            rec_loss = F.mse_loss(reconstruction.float(), target.float())
            commit_loss = F.mse_loss(normalized.float(), codes.detach().float())
            loss = rec_loss + self.config.commitment_cost * commit_loss
            if not self.config.use_ema_codebook:
                loss = loss + F.mse_loss(codes.float(), normalized.detach().float())
        usage = torch.unique(indices).numel() / self.config.codebook_size
        output = VideoLavitMotionTokenizerOutput(
            loss=loss,
            reconstruction=reconstruction,
            token_ids=indices.reshape(indices.shape[0], -1),
            reconstruction_loss=rec_loss,
            commitment_loss=commit_loss,
            codebook_usage=torch.tensor(usage, device=reconstruction.device),
        )
        return output if return_dict else output.to_tuple()


def motion_ids_to_llm_ids(
    token_ids: torch.LongTensor,
    offset: int = MOTION_TOKEN_OFFSET,
    add_markers: bool = True,
    start_token_id: int = MOTION_START_TOKEN_ID,
    end_token_id: int = MOTION_END_TOKEN_ID,
    codebook_size: int | None = None,
) -> torch.LongTensor:
    """Motion codes `(batch, n)` -> LLM ids `code + offset`, wrapped as `[start, ..., end]` (`(batch, n + 2)`) when
    `add_markers`. With `codebook_size`, codes outside `[0, codebook_size)` are rejected."""
    if token_ids.dim() != 2:
        raise ValueError(f"token_ids must have shape (batch, num_tokens), got {tuple(token_ids.shape)}")
    if token_ids.numel() and token_ids.min() < 0:
        raise ValueError(f"motion codes must be non-negative, got minimum {int(token_ids.min())}")
    if codebook_size is not None and token_ids.numel() and token_ids.max() >= codebook_size:
        raise ValueError(f"motion codes must be < {codebook_size}, got maximum {int(token_ids.max())}")
    ids = token_ids.long() + offset
    if not add_markers:
        return ids
    b = ids.shape[0]
    start = ids.new_full((b, 1), start_token_id)
    end = ids.new_full((b, 1), end_token_id)
    return torch.cat([start, ids, end], dim=1)


def llm_ids_to_motion_ids(
    llm_ids: torch.LongTensor,
    codebook_size: int,
    num_tokens: int,
    offset: int = MOTION_TOKEN_OFFSET,
) -> torch.LongTensor:
    """Inverse of [`motion_ids_to_llm_ids`] without markers: LLM ids `(batch, num_tokens)` in
    `[offset, offset + codebook_size)` -> codes. Raises on any other id or count (no silent truncation)."""
    if llm_ids.dim() != 2 or llm_ids.shape[1] != num_tokens:
        raise ValueError(f"expected motion LLM ids of shape (batch, {num_tokens}), got {tuple(llm_ids.shape)}")
    codes = llm_ids.long() - offset
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(
            f"motion LLM ids must lie in [{offset}, {offset + codebook_size - 1}], got values in "
            f"[{int(llm_ids.min())}, {int(llm_ids.max())}]"
        )
    return codes


__all__ = [
    "VideoLavitMotionTokenizer",
    "VideoLavitMotionTokenizerPreTrainedModel",
    "VideoLavitMotionTokenizerOutput",
    "VideoLavitMotionTokenizerEncoderOutput",
    "motion_ids_to_llm_ids",
    "llm_ids_to_motion_ids",
]
