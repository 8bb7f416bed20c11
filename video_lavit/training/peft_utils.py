"""LoRA on the Video-LaVIT language model with trainable multimodal vocabulary rows (peft)."""

from __future__ import annotations

import torch

# a full-match regex: only the Llama decoder's projections, never the keyframe/motion tokenizers (whose blocks may
# use the same layer names)
LLM_LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def multimodal_token_indices(config) -> list[int]:
    """Ids added to the text vocabulary: ``[IMG]`` .. last motion code (32000..49411 when released)."""
    return list(range(config.image_start_token_id, config.motion_token_offset + config.motion_vocab_size))


def video_lavit_lora_config(
    config,
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    target_modules: str | list[str] = LLM_LORA_TARGET_MODULES,
    new_token_rows: str | None = "delta",
):
    """A ``peft.LoraConfig`` for the LLM of a ``VideoLavitForConditionalGeneration``.

    ``new_token_rows`` decides how the multimodal vocabulary rows (``[IMG]`` .. last motion code) are trained:

    * ``"delta"``: ``trainable_token_indices`` on ``embed_tokens`` and the (untied) ``lm_head``; only those rows get
      a trainable delta, the text rows stay frozen (cheap; the adapter stores ``2 x 17412 x hidden`` values);
    * ``"full"``: ``modules_to_save=["embed_tokens", "lm_head"]``, the whole matrices are trained and saved;
    * ``None``: the vocabulary stays frozen, LoRA only.
    """
    from peft import LoraConfig, TaskType

    if new_token_rows not in ("delta", "full", None):
        raise ValueError(f"new_token_rows must be 'delta', 'full' or None, got {new_token_rows!r}")
    trainable, modules_to_save = None, None
    if new_token_rows == "delta":
        indices = multimodal_token_indices(config)
        trainable = {"embed_tokens": indices, "lm_head": indices}
    elif new_token_rows == "full":
        modules_to_save = ["embed_tokens", "lm_head"]
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules,
        task_type=TaskType.CAUSAL_LM,
        trainable_token_indices=trainable,
        modules_to_save=modules_to_save,
    )


def freeze_tokenizers(model) -> int:
    """Freeze the keyframe and motion tokenizers (the original never trains them with the LLM).

    Returns the number of parameters frozen.
    """
    frozen = 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for name in ("visual_tokenizer", "motion_tokenizer"):
        module = getattr(base.model, name, None)
        if module is None:
            raise ValueError(f"{type(base).__name__}.model has no `{name}`")
        for parameter in module.parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def count_trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


__all__ = [
    "LLM_LORA_TARGET_MODULES",
    "count_trainable_parameters",
    "freeze_tokenizers",
    "multimodal_token_indices",
    "video_lavit_lora_config",
]
