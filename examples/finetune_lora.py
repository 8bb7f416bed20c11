"""Fine-tune Video-LaVIT for video question answering with LoRA (peft) and `transformers.Trainer`.

The data is a local JSON / JSON-lines / CSV file of (video, question, answer) records (see `video_qa_data.py`),
turned into a `datasets.Dataset` with a `Video(decode=False)` column. Videos are decoded lazily, batch by batch, by
`VideoLavitProcessor` (PyAV: keyframes + motion vectors), so nothing large is written to disk. Each sample is the
model's own conversation template: the prompt (with the `<video>` placeholder) is masked, the answer (ending with the
template's separator and `</s>`) is the target, as `VideoLavitDataCollator` does for understanding features.

    python examples/finetune_lora.py --model video-lavit-hf --data train.json --output-dir lora-qa \\
        --max-steps 1000 --bf16

The keyframe and motion tokenizers stay frozen; LoRA adapters go on the Llama projections only
(`video_lavit.training.LLM_LORA_TARGET_MODULES`). The adapter (and the processor) are saved in `--output-dir`; load
them with `PeftModel.from_pretrained(base_model, output_dir)` or `examples/evaluate_video_qa.py --adapter output_dir`.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_qa_data import conversation, load_video_qa, video_source  # noqa: E402


@dataclass
class VideoQaFeaturizer:
    """`datasets` transform: rows of (video, question, answers) -> `VideoLavitDataCollator` understanding features."""

    processor: object
    max_clips: int | None = None

    def _answer_text(self, question: str, answer: str) -> tuple[str, str]:
        prompt = self.processor.apply_chat_template(conversation(question), add_generation_prompt=True)
        full = self.processor.apply_chat_template(conversation(question, answer))
        if not full.startswith(prompt):
            raise ValueError("the chat template does not extend the generation prompt with the answer turn")
        return prompt, full[len(prompt) :]

    def __call__(self, batch: dict) -> dict:
        out = {key: [] for key in ("prompt_ids", "answer_ids", "pixel_values", "motion_vectors", "clips_per_video")}
        video_kwargs = {} if self.max_clips is None else {"max_clips": self.max_clips}
        for video, question, answers in zip(batch["video"], batch["question"], batch["answers"]):
            # the first reference answer is the training target
            prompt, answer_text = self._answer_text(question, answers[0])
            encoded = self.processor(text=prompt, videos=[video_source(video)], return_tensors="pt", **video_kwargs)
            out["prompt_ids"].append(encoded["input_ids"][0])
            # the answer turn already holds the template's stop string and "</s>", which the tokenizer maps to EOS
            answer_ids = self.processor.tokenizer(answer_text, add_special_tokens=False)["input_ids"]
            out["answer_ids"].append(torch.tensor(answer_ids, dtype=torch.long))
            for key in ("pixel_values", "motion_vectors", "clips_per_video"):
                out[key].append(encoded[key])
        return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="converted Video-LaVIT folder (root model + processor)")
    parser.add_argument("--data", required=True, help="JSON / JSON-lines / CSV of video, question, answer")
    parser.add_argument("--output-dir", required=True, help="where the LoRA adapter and the processor are saved")
    parser.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (default: --epochs)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="LoRA learning rate")
    parser.add_argument("--batch-size", type=int, default=1, help="per device")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--new-token-rows", choices=("none", "delta", "full"), default="none",
                        help="also train the multimodal vocabulary rows (answers are text, so 'none' by default)")
    parser.add_argument("--max-clips", type=int, default=None, help="clips per video (default: the processor's)")
    parser.add_argument("--bf16", action="store_true", help="bf16 weights and autocast (GPU)")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--use-cpu", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logging-steps", type=int, default=10)
    return parser


def finetune(args: argparse.Namespace):
    """Train; returns the `Trainer` (its `model` is the `PeftModel`) after saving the adapter to `output_dir`."""
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments, set_seed

    import video_lavit  # noqa: F401  (registers the Video-LaVIT Auto classes)
    from video_lavit.training import (
        VideoLavitDataCollator,
        count_trainable_parameters,
        freeze_tokenizers,
        video_lavit_lora_config,
    )

    set_seed(args.seed)
    processor = AutoProcessor.from_pretrained(args.model)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=dtype)
    freeze_tokenizers(model)
    rows = None if args.new_token_rows == "none" else args.new_token_rows
    model = get_peft_model(
        model, video_lavit_lora_config(model.config, r=args.lora_r, lora_alpha=args.lora_alpha, new_token_rows=rows)
    )
    trainable, total = count_trainable_parameters(model)
    print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.3f}%)")

    dataset = load_video_qa(args.data).with_transform(VideoQaFeaturizer(processor, args.max_clips))
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        weight_decay=0.0,
        max_grad_norm=1.0,
        bf16=args.bf16,
        activation_checkpointing=args.activation_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if args.activation_checkpointing else None,
        use_cpu=args.use_cpu,
        seed=args.seed,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        # the transform needs the raw video/question/answers columns, which forward() does not name
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=dataset, data_collator=VideoLavitDataCollator(model.config)
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if not losses or not all(math.isfinite(loss) for loss in losses):
        raise FloatingPointError(f"training loss is not finite: {losses}")
    trainer.save_model(args.output_dir)
    processor.save_pretrained(args.output_dir)
    return trainer


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    trainer = finetune(args)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(f"logged losses: {losses}; adapter saved to {args.output_dir}")
    return trainer


if __name__ == "__main__":
    main()
