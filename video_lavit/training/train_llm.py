"""Finetune the Video-LaVIT language model with ``transformers.Trainer`` (full or LoRA), single or multi device.

Data: a JSON-lines file or a ``datasets.save_to_disk`` folder whose rows are collator features (see
:class:`~video_lavit.training.data_collator.VideoLavitDataCollator`):

* generation direction: ``{"text_ids": [...], "keyframe_codes": [[...], ...], "motion_codes": [[135 codes], ...]}``
* understanding direction: ``{"prompt_ids": [... -201 ...], "answer_ids": [...], "visual_features": ...,
  "motion_token_ids": ..., "clips_per_video": [n]}`` (or ``pixel_values`` / ``motion_vectors``).

Examples::

    # LoRA on one device
    python -m video_lavit.training.train_llm --model CKPT --dataset train.jsonl --output-dir out --lora
    # full finetuning on 8 GPUs with DeepSpeed ZeRO-3 (or FSDP: --fsdp "full_shard auto_wrap")
    accelerate launch --num_processes 8 -m video_lavit.training.train_llm --model CKPT --dataset data/ \\
        --output-dir out --bf16 --activation-checkpointing --deepspeed ds_zero3.json

Optimiser defaults follow the paper's LLM recipe (Table 8): AdamW (0.9, 0.95, eps 1e-6), lr 2e-5, cosine schedule,
weight decay 0.1, gradient clipping 1.0. The keyframe and motion tokenizers stay frozen.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def _load_dataset(path: str):
    import datasets

    source = Path(path)
    if source.is_dir():
        return datasets.load_from_disk(str(source))
    if source.suffix in (".jsonl", ".json"):
        return datasets.load_dataset("json", data_files=str(source), split="train")
    raise ValueError(f"--dataset must be a .jsonl/.json file or a datasets folder, got {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="folder of a converted VideoLavitForConditionalGeneration")
    parser.add_argument("--dataset", required=True, help="JSON-lines file or datasets folder of collator features")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters on the LLM instead of all weights")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--new-token-rows", choices=("delta", "full", "none"), default="delta",
                        help="with --lora: how the multimodal vocabulary rows are trained")
    parser.add_argument("--merge-lora", action="store_true", help="also save the merged model under OUTPUT/merged")
    parser.add_argument("--train-on-text", action="store_true", help="also predict captions (generation direction)")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-ratio", type=float, default=0.03)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=1, help="per device")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=None, help="longest id sequence (default: the context)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed JSON config (run under accelerate/deepspeed)")
    parser.add_argument("--fsdp", default="", help='FSDP policy, e.g. "full_shard auto_wrap"')
    parser.add_argument("--use-cpu", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--logging-steps", type=int, default=10)
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from transformers import Trainer, TrainingArguments

    from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
    from .data_collator import VideoLavitDataCollator
    from .peft_utils import count_trainable_parameters, freeze_tokenizers, video_lavit_lora_config

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = VideoLavitForConditionalGeneration.from_pretrained(args.model, dtype=dtype)
    freeze_tokenizers(model)
    if args.lora:
        from peft import get_peft_model

        rows = None if args.new_token_rows == "none" else args.new_token_rows
        lora = video_lavit_lora_config(
            model.config, r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, new_token_rows=rows
        )
        model = get_peft_model(model, lora)
    trainable, total = count_trainable_parameters(model)
    print(f"trainable parameters: {trainable} of {total} ({100 * trainable / total:.2f}%)")

    dataset = _load_dataset(args.dataset)
    collator = VideoLavitDataCollator(model.config, max_length=args.max_length, train_on_text=args.train_on_text)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.95,
        adam_epsilon=1e-6,
        max_grad_norm=1.0,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup_ratio,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        bf16=args.bf16,
        activation_checkpointing=args.activation_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if args.activation_checkpointing else None,
        deepspeed=args.deepspeed,
        fsdp=args.fsdp,
        use_cpu=args.use_cpu,
        seed=args.seed,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,  # the collator needs every column
        disable_tqdm=False,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator)
    result = trainer.train()
    trainer.save_model(args.output_dir)
    if args.lora and args.merge_lora and trainer.is_world_process_zero():
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(Path(args.output_dir) / "merged")
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics = dict(result.metrics)
    metrics["logged_losses"] = losses
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"non-finite training loss: {losses}")
    return metrics


if __name__ == "__main__":
    main()
