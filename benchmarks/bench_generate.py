"""Speed of keyframe + motion token generation with classifier-free guidance.

Three ways of producing one clip's tokens (K keyframe tokens with CFG 4.0 top-k sampling, then M motion tokens
greedy with CFG 7.0) for a batch of B text prompts, in one run on the same weights:

* ``ours, batched CFG``: ``generate_video_tokens`` (conditional and unconditional rows in one forward per step);
* ``ours, unbatched CFG``: ``generate_video_tokens(batched_cfg=False)``, i.e. transformers'
  ``UnbatchedClassifierFreeGuidanceLogitsProcessor`` (a second forward per step);
* ``floor``: a plain ``LlamaForCausalLM.generate`` (greedy, no processors) on 2B rows with the same prompt lengths
  and the same number of new tokens, i.e. the same forward passes as the batched path without any of its logic.

Token counts are fixed (``min_new_tokens = max_new_tokens``) so every variant does the same number of steps.
Prints tokens/s (B x (K + M) generated tokens per second) and the ratios.

    python benchmarks/bench_generate.py [--hidden-size 256 --layers 4 --batch-size 2 --threads 2 --device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration


def build_models(args):
    text = dict(
        vocab_size=49412, hidden_size=args.hidden_size, intermediate_size=int(args.hidden_size * 2.6875),
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
        max_position_embeddings=4096,
    )
    # the tokenizers are not used by token generation: smallest valid sizes
    visual = VideoLavitVisualTokenizerConfig(
        image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
        merger_intermediate_size=64, projection_dim=args.hidden_size,
    )
    motion = VideoLavitMotionTokenizerConfig(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1),
    )
    config = VideoLavitConfig(text_config=text, visual_tokenizer_config=visual, motion_tokenizer_config=motion)
    torch.manual_seed(0)
    ours = VideoLavitForConditionalGeneration(config).eval()
    floor = LlamaForCausalLM(LlamaConfig(**text)).eval()
    floor.model.load_state_dict(ours.model.language_model.state_dict())
    floor.lm_head.load_state_dict(ours.lm_head.state_dict())
    dtype = getattr(torch, args.dtype)
    return ours.to(args.device, dtype), floor.to(args.device, dtype)


def timed_interleaved(fns: dict, repeats: int, device: str) -> dict:
    """Median wall time of each function; the functions alternate within every repeat so that a change of machine
    load during the run affects all of them alike."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--keyframe-tokens", type=int, default=90, help="paper: ~90 per keyframe")
    parser.add_argument("--motion-tokens", type=int, default=135)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    ours, floor = build_models(args)
    g = torch.Generator().manual_seed(0)
    B, K, M = args.batch_size, args.keyframe_tokens, args.motion_tokens
    prompts = torch.randint(3, 32000, (B, args.prompt_length), generator=g).to(args.device)

    def run_ours(batched):
        return ours.generate_video_tokens(
            prompts, guidance_scale_image=4.0, guidance_scale_motion=7.0, top_k=50,
            generator=torch.Generator(args.device).manual_seed(1), max_new_tokens=(K, M), min_new_tokens=(K, M),
            batched_cfg=batched, show_progress=False,
        )

    stage1 = torch.randint(3, 32000, (2 * B, args.prompt_length + 1), generator=g).to(args.device)
    stage2 = torch.randint(3, 32000, (2 * B, args.prompt_length + 1 + K + 1), generator=g).to(args.device)

    def run_floor():
        for ids, n in ((stage1, K), (stage2, M)):
            floor.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                           min_new_tokens=n, eos_token_id=None, pad_token_id=2)

    with torch.inference_mode():
        batched, unbatched = run_ours(True), run_ours(False)
        same = [s.tolist() for s in batched.sequences] == [s.tolist() for s in unbatched.sequences]
        run_floor()  # warm-up
        timings = timed_interleaved(
            {"batched": lambda: run_ours(True), "unbatched": lambda: run_ours(False), "floor": run_floor},
            args.repeats, args.device,
        )
        t_batched, t_unbatched, t_floor = timings["batched"], timings["unbatched"], timings["floor"]

    tokens = B * (K + M)
    print(f"config: hidden {args.hidden_size}, layers {args.layers}, vocab 49412, batch {B}, prompt {args.prompt_length}, "
          f"{K} keyframe + {M} motion tokens, {args.device} {args.dtype}, {args.threads} threads")
    print(f"batched and unbatched CFG gave identical ids: {same}")
    for name, t in (("ours, batched CFG", t_batched), ("ours, unbatched CFG", t_unbatched), ("floor (plain generate)", t_floor)):
        print(f"{name:24s} {t:7.2f} s  {tokens / t:8.1f} tokens/s")
    print(f"batched vs unbatched CFG speed-up: {t_unbatched / t_batched:.2f}x")
    print(f"batched CFG time / floor time: {t_batched / t_floor:.2f}")


if __name__ == "__main__":
    main()
