# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Evaluate the miniature Video-LaVIT on held-out synthetic videos, offline, with the `evaluate` metric scripts
shipped in `video_lavit/mini/metrics/`.

    python -m video_lavit.mini.evaluate --model DIR [--num 60] [--generation-num 20] [--json OUT.json]

Figures:

* understanding: the model answers a question about each held-out video (new scenes, the training renderer: h264
  and MPEG-4 Part 2 alternately);
  `video_attribute_accuracy` scores the answer (colour, shape and direction all right);
* understanding, other renderer: videos at sizes / frame rates never trained on, encoded with codecs never trained
  on (MPEG-2 in mp4, VP9 in webm) and with h264 at those sizes;
* generation: `VideoLavitPipeline` turns each caption into a 24-frame clip; the pixel judge (`judge.read_blob`)
  reads colour, shape and direction of motion of the blob, scored by the same metric;
* motion tokenizer: `motion_reconstruction_error` between the processor's motion tensors and their decoded codes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .data import TRAIN_CODECS, build_dataset
from .judge import read_blob
from .train import understanding_prompt

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
EVAL_SEED = 1234
OTHER_SIZES = ((112, 80), (128, 128), (48, 48), (120, 96))
OTHER_FPS = (5.0, 15.0, 24.0)
# two codecs never trained on (the training renderer writes h264 and MPEG-4 Part 2), and h264 at the unseen sizes
OTHER_CODECS = ("mpeg2video", "libvpx-vp9", "libx264")
# token counts of the miniature: 16 keyframe codes + [/IMG], 12 motion codes + [/MOV]. Keyframe-token guidance as
# the original (4.0): without it the generated keyframe put the shape on the side it moves towards for about a third
# of validation prompts (seeds disjoint from the evaluation's), and those clips rarely move the captioned way. Motion
# guidance 1.0 instead of the original's 7.0: on the same validation prompts the clips moved the captioned way 33 times
# in 40 against 26, and the greedy motion codes sit closer to the keyframe's shape (README, miniature section)
GENERATION_KWARGS = dict(
    max_new_tokens=(16, 12), min_new_tokens=(16, 12), llm_guidance_scale=4.0, motion_guidance_scale=1.0,
    keyframe_num_inference_steps=20, keyframe_guidance_scale=2.0, num_inference_steps=12, min_guidance_scale=1.0,
    max_guidance_scale=2.0, top_k=5,
)


def load_metric(name: str):
    import evaluate

    return evaluate.load(str(METRICS_DIR / name))


def answer_questions(model, processor, dataset, batch_size: int = 8) -> list[str]:
    """The model's answer to each row's question about its video (greedy)."""
    answers = []
    for start in range(0, len(dataset), batch_size):
        rows = dataset.select(range(start, min(start + batch_size, len(dataset))))
        inputs = processor(text=[understanding_prompt(q) for q in rows["question"]], videos=list(rows["video"]),
                           return_tensors="pt")
        inputs = {k: v for k, v in inputs.items() if k not in ("keyframe_indices", "keyframe_timestamps")}
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=16, do_sample=False, tokenizer=processor.tokenizer)
        answers += processor.decode_answers(out, prompt_length=inputs["input_ids"].shape[1])
    return answers


def generate_descriptions(pipe, captions: list[str], seed: int = EVAL_SEED) -> tuple[list[str], list[np.ndarray]]:
    """Generate one clip per caption and read the blob in its pixels."""
    readings, videos = [], []
    for i, caption in enumerate(captions):
        out = pipe(caption, generator=torch.Generator().manual_seed(seed + i), output_type="np", **GENERATION_KWARGS)
        frames = out.frames[0]
        videos.append(frames)
        readings.append(read_blob(frames).description)
    return readings, videos


def motion_error(model, processor, dataset) -> dict:
    tok = model.model.motion_tokenizer.eval()
    predictions, references = [], []
    for start in range(0, len(dataset), 16):
        videos = list(dataset.select(range(start, min(start + 16, len(dataset))))["video"])
        motion = processor.video_processor(videos, return_tensors="pt")["motion_vectors"]
        with torch.no_grad():
            decoded = tok.decode(tok.encode(motion))
        # x channel first, then y, as the metric expects
        predictions += [d.flatten().tolist() for d in decoded]
        references += [m.flatten().tolist() for m in motion]
    return load_metric("motion_reconstruction_error").compute(predictions=predictions, references=references)


def evaluate_model(model_dir: str | Path, num: int = 60, generation_num: int = 20, other_num: int = 40,
                   show: bool = True) -> dict:
    import video_lavit  # noqa: F401  (registers the Auto classes)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..pipelines.pipeline_video_lavit import VideoLavitPipeline

    torch.manual_seed(EVAL_SEED)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    accuracy = load_metric("video_attribute_accuracy")
    results: dict = {}

    held_out = build_dataset(num, seed=EVAL_SEED, codec=TRAIN_CODECS)
    answers = answer_questions(model, processor, held_out)
    results["understanding"] = accuracy.compute(predictions=answers, references=held_out["caption"])
    results["understanding_examples"] = [
        {"question": q, "answer": a, "truth": c}
        for q, a, c in list(zip(held_out["question"], answers, held_out["caption"]))[:6]
    ]
    if show:
        print(f"understanding (held-out, training renderer, n={num}): {results['understanding']}", flush=True)

    for codec in OTHER_CODECS:
        other = build_dataset(other_num, seed=EVAL_SEED + 1, codec=codec, fps_choices=OTHER_FPS,
                              size_choices=OTHER_SIZES)
        key = f"understanding_other_renderer_{codec}"
        results[key] = accuracy.compute(predictions=answer_questions(model, processor, other),
                                        references=other["caption"])
        if show:
            print(f"understanding (other sizes {OTHER_SIZES}, fps {OTHER_FPS}, {codec}, n={other_num}): "
                  f"{results[key]}", flush=True)

    results["motion_tokenizer"] = motion_error(model, processor, held_out)
    if show:
        print(f"motion tokenizer reconstruction (held-out): {results['motion_tokenizer']}", flush=True)

    if generation_num:
        pipe = VideoLavitPipeline.from_pretrained(model_dir, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        captions = held_out["caption"][:generation_num]
        readings, _ = generate_descriptions(pipe, captions)
        results["generation"] = accuracy.compute(predictions=readings, references=captions)
        results["generation_examples"] = [{"prompt": c, "read_from_pixels": r} for c, r in zip(captions, readings)][:8]
        if show:
            print(f"generation (pixel judge, n={generation_num}): {results['generation']}", flush=True)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped video_lavit.MINI_MODEL_PATH)")
    parser.add_argument("--num", type=int, default=60, help="held-out videos for understanding")
    parser.add_argument("--other-num", type=int, default=40, help="videos per codec from the other renderer")
    parser.add_argument("--generation-num", type=int, default=20, help="captions for generation (0 skips it)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.model is None:
        import video_lavit

        args.model = video_lavit.MINI_MODEL_PATH
    results = evaluate_model(args.model, args.num, args.generation_num, args.other_num)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
