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
"""Configuration of the Video-LaVIT motion tokenizer (VQ-VAE over motion-vector clips)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils import logging

from .auto_map_utils import plain_auto_map

logger = logging.get_logger(__name__)


@strict
class VideoLavitMotionTokenizerConfig(PreTrainedConfig):
    r"""
    Configuration of [`VideoLavitMotionTokenizer`]. Defaults are the released Video-LaVIT v1 values
    (`motion_tokenizer.bin`, 158,476,322 parameters): a 24-frame clip of motion vectors `[2, 24, 20, 36]` is
    encoded by 12 spatio-temporal blocks with four 3-D down-sampling convolutions into a `3 x 5 x 9` grid, and
    each cell is matched against a 1024 x 32 codebook, giving 135 tokens per clip.

    Args:
        in_channels (`int`, *optional*, defaults to 2):
            Channels of the motion input (x and y displacement).
        out_channels (`int`, *optional*, defaults to 2):
            Channels produced by the decoder.
        num_frames (`int`, *optional*, defaults to 24):
            Frames per clip (T). The encoder's temporal position embedding has this many rows.
        height (`int`, *optional*, defaults to 20):
            Height (H) of the motion grid.
        width (`int`, *optional*, defaults to 36):
            Width (W) of the motion grid. The encoder's spatial position embedding has `height * width` rows.
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the encoder and decoder transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 8):
            Heads of the spatial and of the temporal attention.
        mlp_ratio (`float`, *optional*, defaults to 4.0):
            Feed-forward hidden size is `int(hidden_size * mlp_ratio)`.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Feed-forward activation (exact GELU in the original).
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Learned query and value biases (the key bias is fixed at zero).
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm.
        attention_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities during training (0 in the release).
        encoder_blocks_per_stage (`list[int]`, *optional*, defaults to `(3, 3, 3, 3)`):
            Spatio-temporal blocks before each down-sampling convolution.
        decoder_blocks_per_stage (`list[int]`, *optional*, defaults to `(3, 3, 3, 3)`):
            Spatio-temporal blocks after each up-sampling convolution.
        downsample_strides (`list[list[int]]`, *optional*):
            `(t, h, w)` stride of each encoder down-sampling Conv3d (kernel 3, no implicit padding).
        downsample_paddings (`list[list[int]]`, *optional*):
            Explicit zero padding before each down-sampling convolution, in `torch.nn.functional.pad` order
            `(w_left, w_right, h_top, h_bottom, t_front, t_back)`.
        upsample_scale_factors (`list[list[int]]`, *optional*):
            `(t, h, w)` nearest-neighbour scale of each decoder stage, followed by a Conv3d(kernel 3, padding 1).
        downsample_kernel_size (`int`, *optional*, defaults to 3):
            Kernel of the down- and up-sampling convolutions.
        codebook_size (`int`, *optional*, defaults to 1024):
            Number of motion codes.
        code_dim (`int`, *optional*, defaults to 32):
            Dimension of a code vector (the encoder output is projected to it before quantisation).
        motion_scale_factor (`float`, *optional*, defaults to 10.0):
            Tokenizer inputs are motion vectors multiplied by this factor relative to the detokenizer's
            normalisation; [`VideoLavitMotionTokenizer.reconstruct`] divides the decoded motion by it.
        commitment_cost (`float`, *optional*, defaults to 0.25):
            Weight of the commitment term `||sg(e) - z||^2` in the training loss (not stated by the authors;
            the usual VQ-VAE value).
        ema_decay (`float`, *optional*, defaults to 0.995):
            Decay of the exponential moving average codebook update in training mode (paper, appendix A.1).
        ema_epsilon (`float`, *optional*, defaults to 1e-5):
            Laplace smoothing of the EMA cluster sizes, so that unused codes do not divide by zero.
        use_ema_codebook (`bool`, *optional*, defaults to `True`):
            Update the codebook by EMA in training mode. When `False` the codebook is learned by gradient
            through a codebook loss `||e - sg(z)||^2` instead.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated-normal weight initialisation.
        ema_dead_code_threshold (`float`, *optional*, defaults to 0.0):
            In EMA training, a code whose moving-average cluster size falls below this value is restarted on a
            random (l2-normalised) latent of the current batch, so that the codebook cannot collapse onto a few
            codes. `0.0` (the default, and the released training as published) never restarts a code.
        input_clip_value (`float`, *optional*):
            When set, motion inputs are clamped to `[-input_clip_value, input_clip_value]` before encoding, and the
            training reconstruction target is clamped the same way, so that rare large displacements do not dominate
            the MSE. `None` (the default, and the released model's behaviour) leaves the input untouched.

    Example:

    ```python
    >>> from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
    >>> config = VideoLavitMotionTokenizerConfig()
    >>> config.token_grid_size, config.num_motion_tokens
    ((3, 5, 9), 135)
    ```
    """

    model_type = "video_lavit_motion_tokenizer"
    base_config_key = "motion_tokenizer_config"

    in_channels: int = 2
    out_channels: int = 2
    num_frames: int = 24
    height: int = 20
    width: int = 36
    hidden_size: int = 512
    num_attention_heads: int = 8
    mlp_ratio: float | int = 4.0
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5
    attention_dropout: float | int = 0.0
    encoder_blocks_per_stage: list[int] | tuple[int, ...] = (3, 3, 3, 3)
    decoder_blocks_per_stage: list[int] | tuple[int, ...] = (3, 3, 3, 3)
    downsample_strides: list[list[int]] | tuple[tuple[int, ...], ...] = ((1, 2, 2), (2, 1, 1), (2, 1, 1), (2, 2, 2))
    downsample_paddings: list[list[int]] | tuple[tuple[int, ...], ...] = (
        (0, 1, 0, 1, 1, 1),
        (1, 1, 1, 1, 0, 1),
        (1, 1, 1, 1, 0, 1),
        (0, 1, 0, 1, 0, 1),
    )
    upsample_scale_factors: list[list[int]] | tuple[tuple[int, ...], ...] = (
        (2, 2, 2),
        (2, 1, 1),
        (2, 1, 1),
        (1, 2, 2),
    )
    downsample_kernel_size: int = 3
    codebook_size: int = 1024
    code_dim: int = 32
    motion_scale_factor: float | int = 10.0
    commitment_cost: float | int = 0.25
    ema_decay: float = 0.995
    ema_epsilon: float = 1e-5
    use_ema_codebook: bool = True
    initializer_range: float = 0.02
    input_clip_value: float | int | None = None
    ema_dead_code_threshold: float | int = 0.0

    def validate_architecture(self):
        """Reject configurations the model cannot be built from (checked at init by ``@strict``)."""
        if self.input_clip_value is not None and not self.input_clip_value > 0:
            raise ValueError(f"input_clip_value must be a positive number or None, got {self.input_clip_value}")
        if not self.ema_dead_code_threshold >= 0:
            raise ValueError(f"ema_dead_code_threshold must be >= 0, got {self.ema_dead_code_threshold}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        n_stages = len(self.encoder_blocks_per_stage)
        for name, value, width in (
            ("decoder_blocks_per_stage", self.decoder_blocks_per_stage, None),
            ("downsample_strides", self.downsample_strides, 3),
            ("downsample_paddings", self.downsample_paddings, 6),
            ("upsample_scale_factors", self.upsample_scale_factors, 3),
        ):
            if len(value) != n_stages:
                raise ValueError(
                    f"{name} has {len(value)} stages but encoder_blocks_per_stage has {n_stages}"
                )
            if width is not None and any(len(v) != width for v in value):
                raise ValueError(f"every entry of {name} must have {width} integers, got {list(value)}")
        grid = self.token_grid_size  # raises when the sampling schedule cannot shrink the input
        upsampled = list(grid)
        for factors in self.upsample_scale_factors:
            upsampled = [s * f for s, f in zip(upsampled, factors)]
        if tuple(upsampled) != (self.num_frames, self.height, self.width):
            raise ValueError(
                f"upsample_scale_factors map the token grid {grid} to {tuple(upsampled)}, expected the input size "
                f"{(self.num_frames, self.height, self.width)}"
            )

    def to_dict(self) -> dict:
        return plain_auto_map(super().to_dict())

    @property
    def token_grid_size(self) -> tuple[int, int, int]:
        """`(t, h, w)` of the token grid after the down-sampling convolutions, `(3, 5, 9)` when released."""
        size = [self.num_frames, self.height, self.width]
        k = self.downsample_kernel_size
        for stride, pad in zip(self.downsample_strides, self.downsample_paddings):
            padded = [size[0] + pad[4] + pad[5], size[1] + pad[2] + pad[3], size[2] + pad[0] + pad[1]]
            if any(p < k for p in padded):
                raise ValueError(
                    f"down-sampling schedule shrinks the input {(self.num_frames, self.height, self.width)} below the "
                    f"kernel size {k}"
                )
            size = [(p - k) // s + 1 for p, s in zip(padded, stride)]
        return tuple(size)

    @property
    def num_motion_tokens(self) -> int:
        """Tokens per clip: the product of :attr:`token_grid_size` (135 when released)."""
        t, h, w = self.token_grid_size
        return t * h * w

    @property
    def intermediate_size(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


__all__ = ["VideoLavitMotionTokenizerConfig"]
