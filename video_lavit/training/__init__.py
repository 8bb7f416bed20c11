"""Finetuning the Video-LaVIT language model: data collator, LoRA helpers and the `train_llm` script."""

from .data_collator import VideoLavitDataCollator
from .peft_utils import (
    LLM_LORA_TARGET_MODULES,
    count_trainable_parameters,
    freeze_tokenizers,
    multimodal_token_indices,
    video_lavit_lora_config,
)

__all__ = [
    "LLM_LORA_TARGET_MODULES",
    "VideoLavitDataCollator",
    "count_trainable_parameters",
    "freeze_tokenizers",
    "multimodal_token_indices",
    "video_lavit_lora_config",
]
