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
"""Configuration of the Video-LaVIT multimodal language model."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import logging

from .configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from .configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig

logger = logging.get_logger(__name__)

# Llama-2-7B as released in `language_model_sft/config.json`, with the vocabulary extended to 49412 rows
# (32000 text + [IMG] [/IMG] + 16384 visual codes + [MOV] [/MOV] + 1024 motion codes).
RELEASED_TEXT_CONFIG = {
    "model_type": "llama",
    "vocab_size": 49412,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "attention_bias": False,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


@strict
class VideoLavitConfig(PreTrainedConfig):
    r"""
    Configuration of [`VideoLavitModel`] and [`VideoLavitForConditionalGeneration`]: a Llama language model whose
    vocabulary is extended with raw ids for the keyframe and motion tokens, plus the keyframe (visual) tokenizer
    and the motion tokenizer. Defaults reproduce the released Video-LaVIT v1 checkpoint.

    The id layout of the extended vocabulary is derived from `text_vocab_size` and the two codebook sizes, so that
    it cannot disagree with them (released values in brackets):

    | id | meaning |
    |---|---|
    | `0 .. text_vocab_size - 1` | text pieces of the SentencePiece tokenizer (0 .. 31999) |
    | `image_start_token_id` | `[IMG]`, start of a keyframe / image (32000) |
    | `image_end_token_id` | `[/IMG]` (32001) |
    | `visual_token_offset + code` | visual code `code` (32002 .. 48385) |
    | `motion_start_token_id` | `[MOV]` (48386) |
    | `motion_end_token_id` | `[/MOV]` (48387) |
    | `motion_token_offset + code` | motion code `code` (48388 .. 49411) |

    Args:
        text_config (`dict` or `LlamaConfig`, *optional*):
            Config of the language model. A dict is merged over the released Llama-2-7B values (vocabulary 49412),
            so a tiny config only lists what it changes.
        visual_tokenizer_config (`dict` or `VideoLavitVisualTokenizerConfig`, *optional*):
            Config of the keyframe tokenizer (EVA-CLIP + token selector/merger + quantizer + `vit_proj`).
        motion_tokenizer_config (`dict` or `VideoLavitMotionTokenizerConfig`, *optional*):
            Config of the motion tokenizer (135 tokens per 24-frame clip when released).
        text_vocab_size (`int`, *optional*, defaults to 32000):
            Number of text ids; every id at or above it is a visual or motion id.
        image_placeholder_id (`int`, *optional*, defaults to -200):
            Id the processor writes into `input_ids` where an image goes (expanded inside the model).
        video_placeholder_id (`int`, *optional*, defaults to -201):
            Id the processor writes into `input_ids` where a video goes.
        max_clips (`int`, *optional*, defaults to 16):
            Largest number of 24-frame clips one video may contribute.
        ignore_index (`int`, *optional*, defaults to -100):
            Label value excluded from the loss (visual/motion positions and padding).
        answer_stop_string (`str`, *optional*, defaults to `"\\n"`):
            The conversation separator the SFT model ends answers with: a literal backslash followed by `n` (two
            characters), not a newline. Understanding generation stops on it when a tokenizer is given.
        tie_word_embeddings (`bool`, *optional*, defaults to `False`):
            Whether `lm_head` shares the input embedding matrix (not in the release).

    Example:

    ```python
    >>> from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
    >>> config = VideoLavitConfig()
    >>> config.motion_token_offset, config.layout_vocab_size
    (48388, 49412)
    ```
    """

    model_type = "video_lavit"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "visual_tokenizer_config": VideoLavitVisualTokenizerConfig,
        "motion_tokenizer_config": VideoLavitMotionTokenizerConfig,
    }

    text_config: dict | PreTrainedConfig | None = None
    visual_tokenizer_config: dict | PreTrainedConfig | None = None
    motion_tokenizer_config: dict | PreTrainedConfig | None = None
    text_vocab_size: int = 32000
    image_placeholder_id: int = -200
    video_placeholder_id: int = -201
    max_clips: int = 16
    ignore_index: int = -100
    answer_stop_string: str = "\\n"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.text_config is None:
            self.text_config = dict(RELEASED_TEXT_CONFIG)
        elif isinstance(self.text_config, dict):
            # a partial dict overrides the released values instead of falling back to LlamaConfig's defaults
            self.text_config = {**RELEASED_TEXT_CONFIG, **self.text_config}
        super().__post_init__(**kwargs)
        self._check_layout()

    # ----- derived id layout (properties, so that they are never serialized and cannot go stale) -----
    @property
    def image_start_token_id(self) -> int:
        return self.text_vocab_size

    @property
    def image_end_token_id(self) -> int:
        return self.text_vocab_size + 1

    @property
    def visual_token_offset(self) -> int:
        return self.text_vocab_size + 2

    @property
    def visual_vocab_size(self) -> int:
        """Number of visual codes."""
        return self.visual_tokenizer_config.codebook_size

    @property
    def motion_start_token_id(self) -> int:
        return self.visual_token_offset + self.visual_vocab_size

    @property
    def motion_end_token_id(self) -> int:
        return self.motion_start_token_id + 1

    @property
    def motion_token_offset(self) -> int:
        return self.motion_start_token_id + 2

    @property
    def motion_vocab_size(self) -> int:
        """Number of motion codes (the original's `motion_vocab_size = 1026` also counts [MOV] and [/MOV])."""
        return self.motion_tokenizer_config.codebook_size

    @property
    def layout_vocab_size(self) -> int:
        """Ids the layout needs: text + 2 + visual codes + 2 + motion codes (49412 when released)."""
        return self.motion_token_offset + self.motion_vocab_size

    @property
    def num_motion_tokens(self) -> int:
        """Motion tokens per clip (135 when released)."""
        return self.motion_tokenizer_config.num_motion_tokens

    def _check_layout(self):
        # raised as a plain ValueError at init (a `validate_*` method would be wrapped by `@strict`)
        if self.text_vocab_size <= 0:
            raise ValueError(f"text_vocab_size must be positive, got {self.text_vocab_size}")
        if self.image_placeholder_id >= 0 or self.video_placeholder_id >= 0:
            raise ValueError(
                "image_placeholder_id and video_placeholder_id must be negative (they never reach the embedding), got "
                f"{self.image_placeholder_id} and {self.video_placeholder_id}"
            )
        if self.image_placeholder_id == self.video_placeholder_id:
            raise ValueError(f"image and video placeholders must differ, both are {self.image_placeholder_id}")
        if self.max_clips < 1:
            raise ValueError(f"max_clips must be at least 1, got {self.max_clips}")
        if self.text_config.vocab_size < self.layout_vocab_size:
            raise ValueError(
                f"text_config.vocab_size ({self.text_config.vocab_size}) is smaller than the token layout needs: "
                f"{self.text_vocab_size} text + 2 + {self.visual_vocab_size} visual + 2 + {self.motion_vocab_size} "
                f"motion = {self.layout_vocab_size}"
            )
        if self.visual_tokenizer_config.projection_dim != self.text_config.hidden_size:
            raise ValueError(
                f"visual_tokenizer_config.projection_dim ({self.visual_tokenizer_config.projection_dim}) must equal "
                f"text_config.hidden_size ({self.text_config.hidden_size}): keyframe features are spliced into the "
                "language model's embedding sequence"
            )


__all__ = ["VideoLavitConfig"]
