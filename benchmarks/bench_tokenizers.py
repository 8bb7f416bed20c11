"""Throughput of the Video-LaVIT tokenizers.

* Visual tokenizer: images/s of the EVA encoder alone, `tokenize` and `encode_features` at a mid-size config (real 224x224 / 14 px
  geometry, narrower and shallower than ViT-g), with the EVA attention through
  `torch.nn.functional.scaled_dot_product_attention` ("sdpa") and through the plain eager softmax reference,
  same weights, same run; the ratio is sdpa / eager.
* Motion tokenizer: clips/s of `encode` at the real `[B, 2, 24, 20, 36]` geometry (mid-size width).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizers.py [--batch 4] [--repeats 3] [--threads 1] [--full-size]
"""

from __future__ import annotations

import argparse
import time

import torch

from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
from video_lavit.modeling.modeling_visual_tokenizer import VideoLavitVisualTokenizer


def mid_visual_config(full_size: bool) -> VideoLavitVisualTokenizerConfig:
    if full_size:
        return VideoLavitVisualTokenizerConfig()
    return VideoLavitVisualTokenizerConfig(
        hidden_size=384,
        num_hidden_layers=8,
        num_attention_heads=6,
        intermediate_size=1536,
        merger_num_hidden_layers=4,
        merger_num_attention_heads=6,
        merger_intermediate_size=1536,
        codebook_size=4096,
        projection_dim=1024,
    )


def best_rates(fns: dict, items: int, repeats: int) -> dict[str, float]:
    """Items per second of the fastest of `repeats` timed calls of each function (after one warm-up call each).

    The functions are timed in alternation, round after round, so that load changes on a shared machine hit
    every variant alike and the ratio stays meaningful.
    """
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: items / seconds for name, seconds in best.items()}


def bench_visual(args) -> list[tuple[str, float]]:
    config = mid_visual_config(args.full_size)
    torch.manual_seed(0)
    eager = VideoLavitVisualTokenizer._from_config(config, attn_implementation="eager").eval()
    sdpa = VideoLavitVisualTokenizer._from_config(config, attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.state_dict())
    images = torch.randn(args.batch, 3, config.image_size, config.image_size)
    rows = []
    with torch.inference_mode():
        for method in ("get_encoder_features", "tokenize", "encode_features"):
            kwargs = {} if method == "get_encoder_features" else {"deterministic": True}
            fns = {
                name: (lambda model=model: getattr(model, method)(images, **kwargs))
                for name, model in (("eager", eager), ("sdpa", sdpa))
            }
            rates = best_rates(fns, args.batch, args.repeats)
            rows += [(f"visual {method} [{name}] images/s", rate) for name, rate in rates.items()]
            rows.append((f"visual {method} sdpa/eager ratio", rates["sdpa"] / rates["eager"]))
    return rows


def bench_motion(args) -> list[tuple[str, float]]:
    try:
        from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
        from video_lavit.modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
    except ImportError as error:  # the motion tokenizer is a separate component
        print(f"motion tokenizer not available: {error}")
        return []
    config = VideoLavitMotionTokenizerConfig() if args.full_size else VideoLavitMotionTokenizerConfig(
        hidden_size=256, num_attention_heads=4
    )
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(config).eval()
    motion = torch.randn(args.batch, config.in_channels, config.num_frames, config.height, config.width)
    with torch.inference_mode():
        rate = best_rates({"encode": lambda: model.encode(motion)}, args.batch, args.repeats)["encode"]
    return [("motion encode clips/s", rate)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full-size", action="store_true", help="released sizes instead of the mid-size configs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, best of {args.repeats}")
    for label, value in bench_visual(args) + bench_motion(args):
        print(f"{label:45s} {value:10.2f}")


if __name__ == "__main__":
    main()
