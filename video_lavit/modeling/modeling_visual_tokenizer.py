# Copyright 2026 The Video-LaVIT authors and contributors.
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
"""Video-LaVIT keyframe (visual) tokenizer.

Pipeline for a batch of `[B, 3, H, W]` images (H = W = `image_size`, N = `(image_size // patch_size) ** 2`):

1. frozen EVA-CLIP ViT: hidden states after the last block, before the final norm, CLS dropped -> `[B, N, D]`;
2. token selector: per-patch keep/drop log-probabilities `[B, N, 2]`, hard Gumbel-max sampling (the original
   samples even at inference; `deterministic=True` takes the noise-free argmax instead);
3. token merger: all N positions are updated, causal self-attention restricted to kept tokens and
   cross-attention restricted to dropped tokens (policy-masked softmax in float32);
4. kept positions, in raster order, are either quantised against the codebook (discrete ids for generation)
   or projected to the LLM width (continuous features for understanding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging

from .configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig

logger = logging.get_logger(__name__)

# Released LLM id layout (the LLM config owns these; they are only defaults of `codes_to_llm_ids`).
IMAGE_START_TOKEN_ID = 32000
IMAGE_END_TOKEN_ID = 32001
VISUAL_TOKEN_OFFSET = 32002


@dataclass
class VideoLavitVisualTokenizerOutput(ModelOutput):
    r"""
    token_ids (`list[torch.LongTensor]`, one tensor of shape `(K_i,)` per image):
        Codebook indices (0 .. `codebook_size - 1`) of the kept patches of image `i`, in raster order.
    keep_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`):
        Which patches the selector kept (row-major patch order).
    num_tokens (`torch.LongTensor` of shape `(batch_size,)`):
        `K_i = keep_mask[i].sum()`.
    quantized (`list[torch.FloatTensor]`, one tensor of shape `(K_i, code_dim)` per image):
        Codebook rows of `token_ids`.
    selector_log_probs (`torch.FloatTensor` of shape `(batch_size, num_patches, 2)`):
        Log-probabilities of the token selector; index 0 = keep.
    merged_features (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`):
        Token-merger output for every position, dropped ones included.
    """

    token_ids: list[torch.LongTensor] | None = None
    keep_mask: torch.BoolTensor | None = None
    num_tokens: torch.LongTensor | None = None
    quantized: list[torch.FloatTensor] | None = None
    selector_log_probs: torch.FloatTensor | None = None
    merged_features: torch.FloatTensor | None = None


class VideoLavitFp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (the selector and merger norms of the original)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        output = F.layer_norm(hidden_states.float(), self.normalized_shape, weight, bias, self.eps)
        return output.to(hidden_states.dtype)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """Plain softmax attention on `(B, heads, N, head_dim)` tensors; returns `(B, N, heads, head_dim)`."""
    attn_weights = torch.matmul(query * scaling, key.transpose(-1, -2))
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = attn_weights.softmax(dim=-1)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def policy_masked_softmax(scores: torch.Tensor, allowed: torch.Tensor, eps: float) -> torch.Tensor:
    """Softmax of the token merger.

    `scores` `(B, H, N, N)`; `allowed` broadcastable to it, with 1 where a key may be attended. The row max is
    taken over *all* keys, masked keys are zeroed after `exp`, and `(p + eps / N) / (sum(p) + eps)` keeps rows
    without any allowed key finite (they degrade to a uniform average). Computed in float32 because
    `eps / N` is far below bfloat16 resolution.
    """
    num_keys = scores.shape[-1]
    shifted = scores - scores.amax(dim=-1, keepdim=True)
    probs = shifted.float().exp() * allowed.float()
    probs = (probs + eps / num_keys) / (probs.sum(dim=-1, keepdim=True) + eps)
    return probs.to(scores.dtype)


class VideoLavitEvaEmbeddings(nn.Module):
    """Patch embedding, CLS token and learned absolute position embedding of EVA-CLIP."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embedding = nn.Parameter(torch.empty(1, config.num_patches + 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` -> `(B, 1 + N, D)`, CLS first."""
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(patches.shape[0], -1, -1).to(patches.dtype)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.to(patches.dtype)


class VideoLavitEvaAttention(nn.Module):
    """EVA self-attention: one bias-free qkv projection plus separate query and value biases (no key bias)."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.q_bias = nn.Parameter(torch.empty(config.hidden_size))
        self.v_bias = nn.Parameter(torch.empty(config.hidden_size))
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        batch_size, seq_len, width = hidden_states.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(hidden_states, self.qkv.weight, bias.to(hidden_states.dtype))
        qkv = qkv.reshape(batch_size, seq_len, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, _ = attention_interface(self, qkv[0], qkv[1], qkv[2], None, scaling=self.scaling, **kwargs)
        return self.proj(attn_output.reshape(batch_size, seq_len, width))


class VideoLavitMLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class VideoLavitEvaLayer(GradientCheckpointingLayer):
    """Pre-norm EVA block (no layer scale, no RoPE, no relative position bias)."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = VideoLavitEvaAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VideoLavitMLP(config.hidden_size, config.intermediate_size, config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states))
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class VideoLavitEvaVisionModel(nn.Module):
    """EVA-CLIP ViT. `post_layernorm` and `head` belong to the released CLIP weights but are not on the
    tokenizer path: `forward` returns the last block's hidden states, as the tokenizer was trained on."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.embeddings = VideoLavitEvaEmbeddings(config)
        self.layers = nn.ModuleList([VideoLavitEvaLayer(config) for _ in range(config.num_hidden_layers)])
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.hidden_size, config.clip_projection_dim)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` -> `(B, 1 + N, D)` hidden states after the last block (CLS first, no final norm)."""
        hidden_states = self.embeddings(pixel_values)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class VideoLavitTokenSelector(nn.Module):
    """Scores every patch with keep/drop log-probabilities from its own features and the image mean."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        width = config.hidden_size
        self.in_norm = VideoLavitFp32LayerNorm(width, eps=config.selector_layer_norm_eps)
        self.in_proj = nn.Linear(width, width)
        self.fc1 = nn.Linear(width, width // 2)
        self.fc2 = nn.Linear(width // 2, width // 4)
        self.fc3 = nn.Linear(width // 4, 2)
        self.act = ACT2FN[config.hidden_act]

    def _linear(self, layer: nn.Linear, hidden_states: torch.Tensor) -> torch.Tensor:
        # the weights follow the activations' dtype so that the selector can run in float32 inside a bf16 model
        return F.linear(hidden_states, layer.weight.to(hidden_states.dtype), layer.bias.to(hidden_states.dtype))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """`(B, N, D)` features (in the dtype to compute in) -> `(B, N, 2)` log-probabilities, index 0 = keep."""
        hidden = self.act(self._linear(self.in_proj, self.in_norm(features)))
        half = hidden.shape[-1] // 2
        local, global_part = hidden[..., :half], hidden[..., half:]
        global_part = global_part.sum(dim=1, keepdim=True) / hidden.shape[1]
        hidden = torch.cat([local, global_part.expand_as(local)], dim=-1)
        hidden = self.act(self._linear(self.fc1, hidden))
        hidden = self.act(self._linear(self.fc2, hidden))
        return self._linear(self.fc3, hidden).log_softmax(dim=-1)


class VideoLavitTokenMergerAttentionBase(nn.Module):
    """Head layout and policy-masked attention shared by the merger's self- and cross-attention."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.num_heads = config.merger_num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.eps = config.merger_softmax_eps

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """`(B, heads, L, head_dim)` queries over `(B, heads, S, head_dim)` keys/values, `allowed` broadcastable to
        `(B, heads, L, S)` -> `(B, L, heads * head_dim)`."""
        probs = policy_masked_softmax(torch.matmul(query, key.transpose(-1, -2)) * self.scaling, allowed, self.eps)
        attn_output = torch.matmul(probs, value).transpose(1, 2)
        return attn_output.reshape(attn_output.shape[0], attn_output.shape[1], -1)


class VideoLavitTokenMergerSelfAttention(VideoLavitTokenMergerAttentionBase):
    """Causal self-attention in which a query sees the kept keys before it and itself."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__(config)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        eye = torch.eye(seq_len, dtype=policy.dtype, device=policy.device)
        key_policy = policy[:, None, None, :]
        # built from the float policy so gradients of the straight-through decision reach the selector
        allowed = (key_policy + (1.0 - key_policy) * eye) * torch.ones_like(eye).tril()
        return self.proj(self.attend(query, key, value, allowed))


class VideoLavitTokenMergerCrossAttention(VideoLavitTokenMergerAttentionBase):
    """Attention from every position to the normalised encoder features of the dropped patches only."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__(config)
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, vision_states: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        batch_size = hidden_states.shape[0]

        def split_heads(states: torch.Tensor) -> torch.Tensor:
            return states.reshape(batch_size, -1, self.num_heads, self.head_dim).transpose(1, 2)

        query = split_heads(self.q_proj(hidden_states))
        key = split_heads(self.k_proj(vision_states))
        value = split_heads(self.v_proj(vision_states))
        return self.out_proj(self.attend(query, key, value, (1.0 - policy)[:, None, None, :]))


class VideoLavitTokenMergerLayer(GradientCheckpointingLayer):
    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        eps = config.merger_layer_norm_eps
        self.self_attn_layer_norm = VideoLavitFp32LayerNorm(config.hidden_size, eps=eps)
        self.self_attn = VideoLavitTokenMergerSelfAttention(config)
        self.cross_attn_layer_norm = VideoLavitFp32LayerNorm(config.hidden_size, eps=eps)
        self.cross_attn = VideoLavitTokenMergerCrossAttention(config)
        self.final_layer_norm = VideoLavitFp32LayerNorm(config.hidden_size, eps=eps)
        self.mlp = VideoLavitMLP(config.hidden_size, config.merger_intermediate_size, config.hidden_act)

    def forward(self, hidden_states: torch.Tensor, vision_states: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.self_attn_layer_norm(hidden_states), policy)
        hidden_states = hidden_states + self.cross_attn(
            self.cross_attn_layer_norm(hidden_states), vision_states, policy
        )
        return hidden_states + self.mlp(self.final_layer_norm(hidden_states))


class VideoLavitTokenMerger(nn.Module):
    """Updates all positions with information from the dropped ones; only kept positions are used afterwards."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        eps = config.merger_layer_norm_eps
        self.vision_layer_norm = VideoLavitFp32LayerNorm(config.hidden_size, eps=eps)
        self.layers = nn.ModuleList(
            [VideoLavitTokenMergerLayer(config) for _ in range(config.merger_num_hidden_layers)]
        )
        self.norm = VideoLavitFp32LayerNorm(config.hidden_size, eps=eps)

    def forward(self, features: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        """`features` `(B, N, D)` raw encoder features, `policy` `(B, N)` 1.0 = kept -> `(B, N, D)`."""
        vision_states = self.vision_layer_norm(features)
        hidden_states = features
        for layer in self.layers:
            hidden_states = layer(hidden_states, vision_states, policy)
        return self.norm(hidden_states)


class VideoLavitCodeProjection(nn.Module):
    """Maps merged features to the codebook space (`hidden_size` -> `code_dim`)."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.hidden_size)
        self.fc2 = nn.Linear(config.hidden_size, config.code_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(hidden_states)))


class VideoLavitVectorQuantizer(nn.Module):
    """Nearest codebook row to the l2-normalised query. The codebook itself is used as stored (not normalised),
    so the distance is `|z|^2 + |e|^2 - 2 z.e` rather than a cosine."""

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__()
        self.codebook = nn.Embedding(config.codebook_size, config.code_dim)

    def forward(self, latents: torch.Tensor) -> torch.LongTensor:
        """`(K, code_dim)` -> `(K,)` code ids. Distances are computed in float32 so that reduced-precision
        weights do not flip near-tie choices."""
        query = F.normalize(latents.float(), p=2, dim=-1)
        codebook = self.codebook.weight.float()
        distances = (
            query.pow(2).sum(dim=1, keepdim=True)
            + codebook.pow(2).sum(dim=1)
            - 2 * torch.matmul(query, codebook.t())
        )
        return distances.argmin(dim=1)


def sample_keep_decision(
    log_probs: torch.Tensor,
    generator: torch.Generator | None = None,
    gumbel_noise: torch.Tensor | None = None,
    deterministic: bool = False,
) -> tuple[torch.Tensor, torch.BoolTensor]:
    """Hard Gumbel-max keep/drop decision with a straight-through gradient.

    Args:
        log_probs: `(B, N, 2)` selector log-probabilities, index 0 = keep.
        generator: draws the Gumbel noise (the global RNG when `None`, as the original does).
        gumbel_noise: `(B, N, 2)` explicit Gumbel(0, 1) noise; overrides `generator`.
        deterministic: use no noise, i.e. keep iff `log_probs[..., 0] >= log_probs[..., 1]`.

    Returns:
        `policy` `(B, N)` float (exactly 0.0 / 1.0 in value, differentiable w.r.t. `log_probs`) and
        `keep_mask` `(B, N)` bool.
    """
    if deterministic:
        noise = torch.zeros_like(log_probs)
    elif gumbel_noise is not None:
        if not isinstance(gumbel_noise, torch.Tensor):
            raise TypeError(f"gumbel_noise must be a torch.Tensor, got {type(gumbel_noise).__name__}")
        if tuple(gumbel_noise.shape) != tuple(log_probs.shape):
            raise ValueError(
                f"gumbel_noise must have shape {tuple(log_probs.shape)} (batch, patches, 2), "
                f"got {tuple(gumbel_noise.shape)}"
            )
        noise = gumbel_noise.to(device=log_probs.device, dtype=log_probs.dtype)
    else:
        noise = -torch.empty_like(log_probs).exponential_(generator=generator).log()
    soft = (log_probs + noise).softmax(dim=-1)
    index = soft.max(dim=-1, keepdim=True)[1]
    hard = torch.zeros_like(log_probs).scatter_(-1, index, 1.0)
    policy = (hard - soft.detach() + soft)[..., 0]
    return policy, index[..., 0] == 0


class VideoLavitVisualTokenizerPreTrainedModel(PreTrainedModel):
    config: VideoLavitVisualTokenizerConfig
    config_class = VideoLavitVisualTokenizerConfig
    base_model_prefix = "visual_tokenizer"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["VideoLavitEvaLayer", "VideoLavitTokenMergerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VideoLavitEvaEmbeddings):
            init.normal_(module.cls_token, std=std)
            init.normal_(module.position_embedding, std=std)
        elif isinstance(module, VideoLavitEvaAttention):
            init.zeros_(module.q_bias)
            init.zeros_(module.v_bias)
        elif isinstance(module, VideoLavitVectorQuantizer):
            # unit-norm random rows, as the original codebook initialisation
            init.normal_(module.codebook.weight)
            init.copy_(module.codebook.weight, F.normalize(module.codebook.weight, p=2, dim=-1))


class VideoLavitVisualTokenizer(VideoLavitVisualTokenizerPreTrainedModel):
    r"""
    The Video-LaVIT keyframe tokenizer: turns `[B, 3, image_size, image_size]` normalised images into a variable
    number of visual tokens per image (discrete codes via [`~VideoLavitVisualTokenizer.tokenize`], or continuous
    LLM-width features via [`~VideoLavitVisualTokenizer.encode_features`]).

    Token selection is a hard Gumbel-max sample, stochastic at inference as in the released model; pass
    `generator=` for reproducible draws, `gumbel_noise=` to inject noise, or `deterministic=True` for the
    noise-free argmax. The EVA encoder is frozen (`requires_grad=False`).
    """

    def __init__(self, config: VideoLavitVisualTokenizerConfig):
        super().__init__(config)
        self.vision_model = VideoLavitEvaVisionModel(config)
        self.token_selector = VideoLavitTokenSelector(config)
        self.token_merger = VideoLavitTokenMerger(config)
        self.code_projection = VideoLavitCodeProjection(config)
        self.quantizer = VideoLavitVectorQuantizer(config)
        self.feature_projection = nn.Linear(config.hidden_size, config.projection_dim)
        self.vision_model.requires_grad_(False)
        self.post_init()

    # ----------------------------------------------------------------------------------------- input checks
    def _check_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
        expected = (self.config.num_channels, self.config.image_size, self.config.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must have shape (batch, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(pixel_values.shape)}"
            )
        if not pixel_values.is_floating_point():
            raise TypeError(f"pixel_values must be a floating-point tensor, got {pixel_values.dtype}")
        return pixel_values.to(self.vision_model.embeddings.patch_embedding.weight.dtype)

    def _check_codes(self, codes: torch.Tensor) -> None:
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"codes must be a torch.Tensor, got {type(codes).__name__}")
        if codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise TypeError(f"codes must be an integer tensor, got {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.config.codebook_size - 1}], got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )

    # ------------------------------------------------------------------------------------------ components
    def get_encoder_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` -> `(B, N, hidden_size)` EVA patch features (last block, no final norm, CLS dropped)."""
        pixel_values = self._check_pixel_values(pixel_values)
        return self.vision_model(pixel_values)[:, 1:]

    def select_tokens(
        self,
        features: torch.Tensor,
        generator: torch.Generator | None = None,
        gumbel_noise: torch.Tensor | None = None,
        deterministic: bool = False,
        selector_dtype: torch.dtype | None = torch.float32,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.BoolTensor]:
        """Run the selector on `(B, N, D)` features and sample the decisions.

        Returns `(log_probs (B, N, 2), policy (B, N) float, keep_mask (B, N) bool)`; see
        [`sample_keep_decision`]. `selector_dtype=None` runs the selector in the features' dtype.
        """
        log_probs = self.token_selector(features.to(selector_dtype) if selector_dtype else features)
        policy, keep_mask = sample_keep_decision(log_probs, generator, gumbel_noise, deterministic)
        return log_probs, policy, keep_mask

    def merge_tokens(self, features: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        """`(B, N, D)` features and `(B, N)` policy -> `(B, N, D)` merged features (all positions)."""
        return self.token_merger(features, policy.to(features.dtype))

    def quantize(self, merged_tokens: torch.Tensor) -> torch.LongTensor:
        """`(K, hidden_size)` merged features of kept tokens -> `(K,)` code ids."""
        latents = self.code_projection(merged_tokens.to(self.code_projection.fc2.weight.dtype))
        return self.quantizer(latents)

    def get_code_embeddings(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Codebook rows of `codes` (any shape, ids in `[0, codebook_size)`) -> `(*codes.shape, code_dim)`."""
        self._check_codes(codes)
        return self.quantizer.codebook(codes.long())

    # -------------------------------------------------------------------------------------------- public
    def tokenize(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        gumbel_noise: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> VideoLavitVisualTokenizerOutput:
        """Discrete path: `(B, 3, image_size, image_size)` normalised images -> visual codes.

        Args:
            pixel_values: images as produced by `VideoLavitImageProcessor`.
            generator: RNG of the Gumbel noise (global RNG when `None`).
            gumbel_noise: explicit `(B, num_patches, 2)` Gumbel(0, 1) noise, overrides `generator`.
            deterministic: noise-free argmax selection instead of sampling.

        Returns:
            [`VideoLavitVisualTokenizerOutput`] with `token_ids` (list of `(K_i,)`), `keep_mask`
            `(B, num_patches)`, `num_tokens` `(B,)`, `quantized`, `selector_log_probs` and `merged_features`.
        """
        features = self.get_encoder_features(pixel_values)
        # the selector runs in float32 on this path (as in the original tokenize_image)
        log_probs, policy, keep_mask = self.select_tokens(features, generator, gumbel_noise, deterministic)
        merged = self.merge_tokens(features, policy)
        num_tokens = keep_mask.sum(dim=-1)
        codes = self.quantize(merged[keep_mask])
        quantized = self.quantizer.codebook(codes)
        split = num_tokens.tolist()
        return VideoLavitVisualTokenizerOutput(
            token_ids=list(codes.split(split)),
            keep_mask=keep_mask,
            num_tokens=num_tokens,
            quantized=list(quantized.split(split)),
            selector_log_probs=log_probs,
            merged_features=merged,
        )

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        gumbel_noise: torch.Tensor | None = None,
        deterministic: bool = False,
        return_dict: bool | None = None,
    ) -> VideoLavitVisualTokenizerOutput | tuple:
        """Same as [`~VideoLavitVisualTokenizer.tokenize`]."""
        output = self.tokenize(pixel_values, generator, gumbel_noise, deterministic)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def encode_features(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        gumbel_noise: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> list[torch.FloatTensor]:
        """Continuous path for understanding: kept merged tokens projected to the LLM width.

        Returns one `(K_i, projection_dim)` tensor per image (raster order). The encoder and the selector run
        without gradients and in the model dtype, as in the original; the merger and `feature_projection`
        are trainable.
        """
        with torch.no_grad():
            features = self.get_encoder_features(pixel_values)
            _, policy, keep_mask = self.select_tokens(
                features, generator, gumbel_noise, deterministic, selector_dtype=None
            )
        merged = self.merge_tokens(features, policy)
        projected = self.feature_projection(merged[keep_mask])
        return list(projected.split(keep_mask.sum(dim=-1).tolist()))

    @staticmethod
    def codes_to_llm_ids(
        token_ids: list[torch.LongTensor],
        add_special: bool = False,
        visual_token_offset: int = VISUAL_TOKEN_OFFSET,
        image_start_token_id: int = IMAGE_START_TOKEN_ID,
        image_end_token_id: int = IMAGE_END_TOKEN_ID,
    ) -> list[torch.LongTensor]:
        """Per-image codes -> LLM ids `code + visual_token_offset`, optionally wrapped as
        `[image_start, ..., image_end]`. The defaults are the released id layout."""
        llm_ids = []
        for codes in token_ids:
            ids = codes.long() + visual_token_offset
            if add_special:
                start = ids.new_tensor([image_start_token_id])
                end = ids.new_tensor([image_end_token_id])
                ids = torch.cat([start, ids, end])
            llm_ids.append(ids)
        return llm_ids


__all__ = [
    "VideoLavitVisualTokenizer",
    "VideoLavitVisualTokenizerOutput",
    "VideoLavitVisualTokenizerPreTrainedModel",
    "policy_masked_softmax",
    "sample_keep_decision",
]
