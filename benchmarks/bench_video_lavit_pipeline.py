"""Where the time of one `VideoLavitPipeline` call goes, and what batching prompts buys.

On the miniature pipeline of `video_lavit.testing` (random weights, real clip geometry: 24 frames, 135 motion tokens),
in one run:

* stage shares of a text-to-video call (LLM tokens, motion decoding, keyframe diffusion, video diffusion + VAE);
* B prompts in one call vs the same B prompts one call each (videos/s and the ratio).

    python benchmarks/bench_video_lavit_pipeline.py [--batch-size 2 --clips 1 --threads 1 --repeats 2]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

import video_lavit  # noqa: F401  (registrations)
from video_lavit.pipelines import VideoLavitKeyframePipeline, VideoLavitPipeline, VideoLavitReconstructionPipeline
from video_lavit.testing import build_tiny_video_lavit_pipeline

PROMPTS = ["a dog running on the beach", "a red car on a mountain road", "two people dancing in a room",
           "a boat on a calm lake at sunset"]


def timed(owner, name, totals, key):
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="diffusion steps of both detokenizers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not 1 <= args.batch_size <= len(PROMPTS):
        raise ValueError(f"--batch-size must be in [1, {len(PROMPTS)}], got {args.batch_size}")

    pipe = build_tiny_video_lavit_pipeline()
    pipe.set_progress_bar_config(disable=True)
    prompts = PROMPTS[: args.batch_size]
    # fixed token counts, so every variant runs the same number of LLM steps
    call = dict(num_clips=args.clips, num_inference_steps=args.steps, keyframe_num_inference_steps=args.steps,
                max_new_tokens=(40, 135), min_new_tokens=(40, 135), output_type="pt")

    totals = defaultdict(float)
    timed(pipe.language_model, "generate_video_tokens", totals, "LLM tokens")
    timed(VideoLavitPipeline, "decode_motion", totals, "motion decoding")
    timed(VideoLavitKeyframePipeline, "__call__", totals, "keyframe diffusion")
    timed(VideoLavitReconstructionPipeline, "__call__", totals, "video diffusion + VAE")

    pipe(prompts[0], generator=torch.Generator().manual_seed(0), **call)  # warm-up
    batched = single = 0.0
    for repeat in range(args.repeats):
        totals.clear()
        start = time.perf_counter()
        pipe(prompts, generator=torch.Generator().manual_seed(repeat), **call)
        batched += time.perf_counter() - start
        shares = dict(totals)
        start = time.perf_counter()
        for prompt in prompts:
            pipe(prompt, generator=torch.Generator().manual_seed(repeat), **call)
        single += time.perf_counter() - start

    videos = args.batch_size * args.repeats
    print(f"tiny pipeline, {args.clips} clip(s) of 24 frames at 64x64, {args.steps} steps, {args.threads} thread(s)")
    total = sum(shares.values())
    for key, seconds in shares.items():
        print(f"  {key:24s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %  (batched call)")
    print(f"batch of {args.batch_size} in one call: {videos / batched:.3f} videos/s")
    print(f"one prompt per call      : {videos / single:.3f} videos/s")
    print(f"ratio batched / one by one: {single / batched:.2f}x")


if __name__ == "__main__":
    main()
