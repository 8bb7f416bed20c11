"""Keyframe decoder of Video-LaVIT: discrete visual codes -> SDXL UNet conditioning.

The original calls it ``HighresVQDecoder``. Learned queries (one per patch of the 224-px / 14-px grid)
cross-attend to the variable-length sequence of kept visual codes, reconstruct EVA-CLIP patch features,
and project them to the two token contexts of an SDXL UNet (``prompt_embeds``) plus its pooled text
embedding (``pooled_prompt_embeds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

# the decoder's norms are evaluated in float32 and cast back, as the released model was trained under bf16 autocast
from .modeling_visual_tokenizer import VideoLavitFp32LayerNorm


@dataclass
class VideoLavitKeyframeDecoderOutput(BaseOutput):
    """
    Args:
        prompt_embeds (`torch.FloatTensor` of shape `(batch_size, num_queries, sum(prompt_embed_dims))`):
            UNet cross-attention context, released size `[B, 256, 2048]` (768 ++ 1280 channels).
        pooled_prompt_embeds (`torch.FloatTensor` of shape `(batch_size, pooled_embed_dim)`):
            The `text_embeds` of the UNet's `text_time` addition embedding, released size `[B, 1280]`.
        visual_features (`torch.FloatTensor` of shape `(batch_size, num_queries, feature_dim)`):
            Reconstructed EVA-CLIP patch features (`[B, 256, 1408]`) from which both conditions are projected.
    """

    prompt_embeds: torch.FloatTensor
    pooled_prompt_embeds: torch.FloatTensor
    visual_features: torch.FloatTensor | None = None


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, channels = x.shape
    return x.view(batch, length, num_heads, channels // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class VideoLavitKeyframeSelfAttention(nn.Module):
    """Multi-head self-attention over the queries with a fused `qkv` projection (layout `[3, heads, head_dim]`)."""

    def __init__(self, hidden_size: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        query, key, value = self.qkv(hidden_states).chunk(3, dim=-1)
        attn = F.scaled_dot_product_attention(
            _split_heads(query, self.num_heads), _split_heads(key, self.num_heads), _split_heads(value, self.num_heads)
        )
        return self.out_proj(_merge_heads(attn))


class VideoLavitKeyframeCrossAttention(nn.Module):
    """Queries attend to the padded code sequence; padded keys get an additive -10000 (not -inf), as trained."""

    def __init__(self, hidden_size: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, hidden_states: torch.Tensor, codes: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        attn = F.scaled_dot_product_attention(
            _split_heads(self.q_proj(hidden_states), self.num_heads),
            _split_heads(self.k_proj(codes), self.num_heads),
            _split_heads(self.v_proj(codes), self.num_heads),
            attn_mask=additive_mask.to(hidden_states.dtype),
        )
        return self.out_proj(_merge_heads(attn))


class VideoLavitKeyframeMLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class VideoLavitKeyframeDecoderLayer(nn.Module):
    """Pre-LN block: self-attention on the queries, cross-attention to the codes, MLP."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, qkv_bias: bool, eps: float):
        super().__init__()
        self.self_attn_norm = VideoLavitFp32LayerNorm(hidden_size, eps=eps)
        self.self_attn = VideoLavitKeyframeSelfAttention(hidden_size, num_heads, qkv_bias)
        self.cross_attn_norm = VideoLavitFp32LayerNorm(hidden_size, eps=eps)
        self.cross_attn = VideoLavitKeyframeCrossAttention(hidden_size, num_heads, qkv_bias)
        self.mlp_norm = VideoLavitFp32LayerNorm(hidden_size, eps=eps)
        self.mlp = VideoLavitKeyframeMLP(hidden_size, intermediate_size)

    def forward(self, queries: torch.Tensor, codes: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        queries = queries + self.self_attn(self.self_attn_norm(queries))
        queries = queries + self.cross_attn(self.cross_attn_norm(queries), codes, additive_mask)
        return queries + self.mlp(self.mlp_norm(queries))


class VideoLavitAttentionPooler(nn.Module):
    """CLIP-style attention pooling: the token mean is prepended, a learned position embedding added, and the
    mean position's attention output (over all positions) is projected to `output_dim`."""

    def __init__(self, num_tokens: int, embed_dim: int, num_heads: int, output_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.position_embedding = nn.Parameter(torch.zeros(num_tokens + 1, embed_dim))
        # a checkpoint overwrites these; from scratch, zero embeddings would leave every position alike
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, output_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([features.mean(dim=1, keepdim=True), features], dim=1)
        tokens = tokens + self.position_embedding.to(tokens.dtype)
        # Only the mean position's output is returned, so only its query is computed.
        attn = F.scaled_dot_product_attention(
            _split_heads(self.q_proj(tokens[:, :1]), self.num_heads),
            _split_heads(self.k_proj(tokens), self.num_heads),
            _split_heads(self.v_proj(tokens), self.num_heads),
        )
        return self.out_proj(_merge_heads(attn))[:, 0]


class VideoLavitKeyframeDecoder(ModelMixin, ConfigMixin):
    r"""
    Decodes the visual codes of a keyframe into the conditioning of an SDXL-layout `UNet2DConditionModel`.

    The decoder holds a copy of the visual tokenizer's quantizer codebook (`codebook`, `[codebook_size,
    code_dim]`) so that a `VideoLavitKeyframePipeline` needs no tokenizer; pre-looked-up code vectors (e.g. from
    `VideoLavitVisualTokenizer.get_code_embeddings`) can be passed instead via `code_embeddings`.

    Parameters:
        codebook_size (`int`, defaults to 16384): number of visual codes.
        code_dim (`int`, defaults to 32): width of a codebook vector.
        hidden_size (`int`, defaults to 1408): width of the decoder transformer.
        num_hidden_layers (`int`, defaults to 12): decoder blocks.
        num_attention_heads (`int`, defaults to 16): heads of the self- and cross-attention.
        intermediate_size (`int`, defaults to 6144): MLP hidden width (`int(1408 * 4.3637)` in the original).
        num_queries (`int`, defaults to 256): learned queries (one per 14-px patch of a 224-px image); also the
            length of the code position embedding, hence the maximum number of codes per image.
        qkv_bias (`bool`, defaults to `True`): bias of the attention projections.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon.
        feature_dim (`int`, defaults to 1408): width of the reconstructed EVA-CLIP features.
        prompt_embed_dims (`tuple[int, int]`, defaults to `(768, 1280)`): the two token projections that are
            concatenated into `prompt_embeds` (SDXL's CLIP-L and OpenCLIP-bigG widths).
        pooled_embed_dim (`int`, defaults to 1280): width of `pooled_prompt_embeds`.
        pooler_num_heads (`int`, defaults to 16): heads of the attention pooler.
    """

    _supports_gradient_checkpointing = False
    _no_split_modules = ["VideoLavitKeyframeDecoderLayer"]

    @register_to_config
    def __init__(
        self,
        codebook_size: int = 16384,
        code_dim: int = 32,
        hidden_size: int = 1408,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 16,
        intermediate_size: int = 6144,
        num_queries: int = 256,
        qkv_bias: bool = True,
        layer_norm_eps: float = 1e-5,
        feature_dim: int = 1408,
        prompt_embed_dims: Sequence[int] = (768, 1280),
        pooled_embed_dim: int = 1280,
        pooler_num_heads: int = 16,
    ):
        super().__init__()
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        if feature_dim % pooler_num_heads:
            raise ValueError(f"feature_dim {feature_dim} is not divisible by pooler_num_heads {pooler_num_heads}")
        if len(prompt_embed_dims) != 2:
            raise ValueError(f"prompt_embed_dims must hold 2 widths, got {list(prompt_embed_dims)}")

        self.codebook = nn.Embedding(codebook_size, code_dim)
        self.code_proj = nn.Linear(code_dim, hidden_size)
        # Position of a code in the order of the kept tokens, not its location on the patch grid.
        self.code_position_embedding = nn.Parameter(torch.zeros(1, num_queries, hidden_size))
        self.query_embeddings = nn.Parameter(torch.zeros(1, num_queries, hidden_size))
        # from scratch, zero queries (and positions) would stay identical to each other: all queries would read
        # the same bag of codes. A checkpoint overwrites both.
        nn.init.trunc_normal_(self.code_position_embedding, std=0.02)
        nn.init.trunc_normal_(self.query_embeddings, std=0.02)
        self.layers = nn.ModuleList(
            VideoLavitKeyframeDecoderLayer(hidden_size, num_attention_heads, intermediate_size, qkv_bias, layer_norm_eps)
            for _ in range(num_hidden_layers)
        )
        self.norm = VideoLavitFp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.feature_head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, feature_dim))
        self.prompt_proj_1 = nn.Linear(feature_dim, prompt_embed_dims[0])
        self.prompt_proj_2 = nn.Linear(feature_dim, prompt_embed_dims[1])
        self.pooler = VideoLavitAttentionPooler(num_queries, feature_dim, pooler_num_heads, pooled_embed_dim)

    # ----------------------------------------------------------------------------------------------------------
    # input handling

    def _check_lengths(self, lengths: Sequence[int]) -> None:
        max_codes = self.config.num_queries
        for i, length in enumerate(lengths):
            if length < 1:
                raise ValueError(f"image {i} has no visual codes; each image needs 1 to {max_codes} codes")
            if length > max_codes:
                raise ValueError(f"image {i} has {length} visual codes; at most {max_codes} are supported")

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.is_floating_point() or codes.dtype == torch.bool:
            raise TypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ValueError(
                f"visual codes must lie in [0, {self.config.codebook_size}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )

    @staticmethod
    def _check_right_padded(attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)
        expected = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
        if not torch.equal(mask, expected):
            raise ValueError("attention_mask must be right-padded: ones for the codes, then zeros")
        return lengths

    def pad_code_embeddings(
        self,
        codes: torch.Tensor | Sequence[torch.Tensor] | None = None,
        code_embeddings: torch.Tensor | Sequence[torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalise the accepted input forms to zero-padded code vectors `[B, N, code_dim]` and mask `[B, N]`.

        `codes`: a list of `LongTensor [K_i]` or a padded `LongTensor [B, N]` (with `attention_mask`).
        `code_embeddings`: a list of `FloatTensor [K_i, code_dim]` or a padded `[B, N, code_dim]` (with mask).
        Exactly one of the two must be given. Without `attention_mask`, every position of a padded tensor is a code.
        """
        if (codes is None) == (code_embeddings is None):
            raise ValueError("pass exactly one of `codes` or `code_embeddings`")
        code_dim = self.config.code_dim
        sequences = codes if codes is not None else code_embeddings
        if isinstance(sequences, torch.Tensor):
            expected_dim = 2 if codes is not None else 3
            if sequences.ndim != expected_dim:
                name = "codes" if codes is not None else "code_embeddings"
                layout = "[B, N]" if codes is not None else f"[B, N, {code_dim}]"
                raise ValueError(f"{name} must be a list of sequences or a padded {layout} tensor, got shape {tuple(sequences.shape)}")
            if attention_mask is None:
                attention_mask = torch.ones(sequences.shape[:2], dtype=torch.long, device=sequences.device)
            if tuple(attention_mask.shape) != tuple(sequences.shape[:2]):
                raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != {tuple(sequences.shape[:2])}")
            lengths = self._check_right_padded(attention_mask)
            self._check_lengths(lengths.tolist())
            sequences = [seq[:length] for seq, length in zip(sequences, lengths.tolist())]
            max_len = int(lengths.max())
        else:
            if attention_mask is not None:
                raise ValueError("attention_mask is only used with padded tensors, not with a list of sequences")
            sequences = [torch.as_tensor(s) for s in sequences]
            if not sequences:
                raise ValueError("got an empty list of images")
            expected_dim = 1 if codes is not None else 2
            for i, seq in enumerate(sequences):
                if seq.ndim != expected_dim:
                    raise ValueError(f"sequence {i} must have {expected_dim} dims, got shape {tuple(seq.shape)}")
            self._check_lengths([len(s) for s in sequences])
            max_len = max(len(s) for s in sequences)

        if codes is not None:
            flat = torch.cat(list(sequences)).to(self.codebook.weight.device)
            self._check_codes(flat)
            vectors = list(self.codebook(flat).split([len(s) for s in sequences]))
        else:
            for i, seq in enumerate(sequences):
                if seq.shape[-1] != code_dim:
                    raise ValueError(f"code_embeddings[{i}] has width {seq.shape[-1]}, expected code_dim={code_dim}")
            vectors = list(sequences)

        device, dtype = self.code_proj.weight.device, self.code_proj.weight.dtype
        padded = torch.zeros(len(vectors), max_len, code_dim, dtype=dtype, device=device)
        mask = torch.zeros(len(vectors), max_len, dtype=dtype, device=device)
        for i, vec in enumerate(vectors):
            padded[i, : len(vec)] = vec.to(device=device, dtype=dtype)
            mask[i, : len(vec)] = 1
        return padded, mask

    def spatial_code_map(
        self, codes: torch.LongTensor | Sequence[torch.LongTensor], size: tuple[int, int]
    ) -> torch.FloatTensor:
        r"""
        Codebook vectors laid out on the square patch grid, nearest-upsampled to `size`: the spatial condition of a
        keyframe UNet whose `in_channels` are its latent channels plus `code_dim`.

        Only defined when every patch of the image was kept (`K = g * g` codes in raster order, as in the miniature
        of `video_lavit.mini`); the released model prunes patches, so its codes have no grid.

        Args:
            codes (`list[torch.LongTensor]` of shapes `[K]`, or `torch.LongTensor` of shape `(B, K)`).
            size (`tuple[int, int]`): `(height, width)` of the latents, multiples of the grid side `g`.

        Returns:
            `torch.FloatTensor` of shape `(B, code_dim, height, width)`.
        """
        padded, mask = self.pad_code_embeddings(codes=codes)
        if not bool(mask.all()):
            lengths = sorted(set(mask.sum(dim=1).long().tolist()))
            raise ValueError(f"a spatial code map needs the same number of codes for every image, got {lengths}")
        count = padded.shape[1]
        side = int(round(count**0.5))
        if side * side != count:
            raise ValueError(f"a spatial code map needs a square grid of codes (every patch kept), got {count} codes")
        height, width = size
        if height % side or width % side:
            raise ValueError(f"latent size {height}x{width} is not a multiple of the {side}x{side} code grid")
        grid = padded.transpose(1, 2).reshape(len(padded), -1, side, side)
        return F.interpolate(grid, size=(height, width), mode="nearest")

    # ----------------------------------------------------------------------------------------------------------

    def forward(
        self,
        codes: torch.LongTensor | Sequence[torch.LongTensor] | None = None,
        code_embeddings: torch.FloatTensor | Sequence[torch.FloatTensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> VideoLavitKeyframeDecoderOutput | tuple:
        r"""
        Args:
            codes (`list[torch.LongTensor]` of shapes `[K_i]`, or `torch.LongTensor` of shape `(B, N)`):
                Visual codes in `[0, codebook_size)` of each image, in the raster order of the kept patches
                (1 <= K_i <= num_queries). A padded tensor needs a right-padded `attention_mask`.
            code_embeddings (`list[torch.FloatTensor]` of shapes `[K_i, code_dim]`, or `(B, N, code_dim)`):
                Codebook vectors instead of codes.
            attention_mask (`torch.Tensor` of shape `(B, N)`, *optional*): 1 for codes, 0 for padding.

        Returns:
            [`VideoLavitKeyframeDecoderOutput`]: `prompt_embeds` `(B, num_queries, sum(prompt_embed_dims))`,
            `pooled_prompt_embeds` `(B, pooled_embed_dim)` and `visual_features` `(B, num_queries, feature_dim)`.
        """
        padded, mask = self.pad_code_embeddings(codes, code_embeddings, attention_mask)
        # Padded positions stay exactly zero after the projection (the original pads after projecting), and
        # then receive the position embedding like every other position.
        hidden = self.code_proj(padded) * mask[..., None]
        hidden = hidden + self.code_position_embedding[:, : hidden.shape[1]]
        additive_mask = ((1.0 - mask) * -10000.0)[:, None, None, :]

        queries = self.query_embeddings.expand(hidden.shape[0], -1, -1)
        for layer in self.layers:
            queries = layer(queries, hidden, additive_mask)
        features = self.feature_head(self.norm(queries))

        prompt_embeds = torch.cat([self.prompt_proj_1(features), self.prompt_proj_2(features)], dim=-1)
        pooled_prompt_embeds = self.pooler(features)
        if not return_dict:
            return prompt_embeds, pooled_prompt_embeds, features
        return VideoLavitKeyframeDecoderOutput(
            prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled_prompt_embeds, visual_features=features
        )
