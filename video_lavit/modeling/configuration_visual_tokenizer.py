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
"""Configuration of the Video-LaVIT keyframe (visual) tokenizer."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils import logging

from .auto_map_utils import plain_auto_map

logger = logging.get_logger(__name__)


@strict
class VideoLavitVisualTokenizerConfig(PreTrainedConfig):
    r"""
    Configuration of [`VideoLavitVisualTokenizer`]: a frozen EVA-CLIP ViT encoder, a token selector that keeps a
    variable subset of patches, a token merger that folds dropped patches into kept ones, a vector quantizer
    for the discrete (generation) path and a projection into the LLM embedding space for the continuous
    (understanding) path. The defaults are those of the released Video-LaVIT checkpoint (EVA-CLIP ViT-g/14,
    16384-entry codebook, LLaMA-7B embedding width).

    Args:
        image_size (`int`, *optional*, defaults to 224):
            Height and width of the (square) input image.
        patch_size (`int`, *optional*, defaults to 14):
            Side of a square patch; `(image_size // patch_size) ** 2` patches are tokenized.
        num_channels (`int`, *optional*, defaults to 3):
            Number of input image channels.
        hidden_size (`int`, *optional*, defaults to 1408):
            Width of the EVA encoder, shared by the selector, the merger and the quantizer input.
        num_hidden_layers (`int`, *optional*, defaults to 40):
            Number of EVA encoder blocks (all of them are used; the final norm is not).
        num_attention_heads (`int`, *optional*, defaults to 16):
            Attention heads of the EVA encoder.
        intermediate_size (`int`, *optional*, defaults to 6144):
            Hidden width of the EVA MLPs (`int(1408 * 4.3637)`).
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the EVA LayerNorms.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of every MLP (exact GELU).
        clip_projection_dim (`int`, *optional*, defaults to 1024):
            Output width of the EVA-CLIP head. The head (and the final EVA norm) are kept so that the released
            weights load completely, but the tokenizer never uses them.
        selector_layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the token selector's input LayerNorm. The selector MLP narrows `hidden_size` to
            `hidden_size // 2`, `hidden_size // 4` and 2 (keep / drop), as in the original.
        merger_num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of token merger blocks.
        merger_num_attention_heads (`int`, *optional*, defaults to 16):
            Attention heads of both merger attentions.
        merger_intermediate_size (`int`, *optional*, defaults to 6144):
            Hidden width of the merger MLPs.
        merger_layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the merger LayerNorms.
        merger_softmax_eps (`float`, *optional*, defaults to 1e-6):
            Smoothing of the merger's policy-masked softmax, `(p + eps / N) / (sum(p) + eps)`.
        codebook_size (`int`, *optional*, defaults to 16384):
            Number of visual codes.
        code_dim (`int`, *optional*, defaults to 32):
            Dimension of a codebook vector.
        projection_dim (`int`, *optional*, defaults to 4096):
            Output width of `vit_proj` (the LLM embedding width) on the understanding path.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser for freshly created weights.

    Example:

    ```python
    >>> from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
    >>> config = VideoLavitVisualTokenizerConfig()
    >>> config.num_patches
    256
    ```
    """

    model_type = "video_lavit_visual_tokenizer"
    base_config_key = "visual_tokenizer_config"

    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    hidden_size: int = 1408
    num_hidden_layers: int = 40
    num_attention_heads: int = 16
    intermediate_size: int = 6144
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu"
    clip_projection_dim: int = 1024
    selector_layer_norm_eps: float = 1e-5
    merger_num_hidden_layers: int = 12
    merger_num_attention_heads: int = 16
    merger_intermediate_size: int = 6144
    merger_layer_norm_eps: float = 1e-5
    merger_softmax_eps: float = 1e-6
    codebook_size: int = 16384
    code_dim: int = 32
    projection_dim: int = 4096
    initializer_range: float = 0.02

    @property
    def num_patches(self) -> int:
        """Patches per image (the CLS token is not counted)."""
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return plain_auto_map(super().to_dict())

    def validate_architecture(self):
        """Reject sizes the architecture cannot be built with."""
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        for name, heads in (
            ("num_attention_heads", self.num_attention_heads),
            ("merger_num_attention_heads", self.merger_num_attention_heads),
        ):
            if self.hidden_size % heads != 0:
                raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by {name} ({heads})")
        if self.hidden_size % 4 != 0:
            # the selector splits channels in halves and its MLP narrows to hidden_size // 4
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by 4 for the token selector")


__all__ = ["VideoLavitVisualTokenizerConfig"]
