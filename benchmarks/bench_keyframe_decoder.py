"""Throughput of the keyframe decoder (visual codes -> SDXL conditioning).

Compares, with the same weights in the same run, `VideoLavitKeyframeDecoder` as shipped (attention through
`torch.nn.functional.scaled_dot_product_attention`, pooler computing only the mean position's query) with an
eager reference of the original's math (explicit softmax attention, full `F.multi_head_attention_forward`
pooling over all positions). Real 256-query geometry with ~90 codes per image (the tokenizer's average);
a mid-size width unless `--full-size`. Prints images/s and the ratio ours / eager, plus the largest difference.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_keyframe_decoder.py [--batch 4] [--repeats 3] [--full-size]
"""

from __future__ import annotations

import argparse
import time
import types

import torch
import torch.nn.functional as F

from video_lavit.modeling import modeling_keyframe_decoder as kd


def eager_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5
    if attn_mask is not None:
        scores = scores + attn_mask
    return scores.softmax(dim=-1) @ value


def eager_pooler(self, features):
    x = torch.cat([features.mean(dim=1, keepdim=True), features], dim=1) + self.position_embedding
    x = x.transpose(0, 1)
    out, _ = F.multi_head_attention_forward(
        x, x, x, x.shape[-1], self.num_heads, None,
        torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]), None, None, False, 0.0,
        self.out_proj.weight, self.out_proj.bias, training=False, need_weights=False, use_separate_proj_weight=True,
        q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
    )
    return out[0]


def best_rate(fn, items: int, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return items / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = {} if args.full_size else dict(hidden_size=704, num_hidden_layers=6, num_attention_heads=8,
                                            intermediate_size=3072, feature_dim=704, pooler_num_heads=8)
    torch.manual_seed(0)
    model = kd.VideoLavitKeyframeDecoder(**config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    lengths = torch.randint(60, 120, (args.batch,)).tolist()
    codes = [torch.randint(0, model.config.codebook_size, (n,)) for n in lengths]

    def run():
        return model(codes=codes)

    with torch.inference_mode():
        ours_out = run()
        ours = best_rate(run, args.batch, args.repeats)
        original_f, original_pool = kd.F, kd.VideoLavitAttentionPooler.forward
        kd.F = types.SimpleNamespace(**{**vars(F), "scaled_dot_product_attention": eager_attention})
        kd.VideoLavitAttentionPooler.forward = eager_pooler
        try:
            eager_out = run()
            eager = best_rate(run, args.batch, args.repeats)
        finally:
            kd.F, kd.VideoLavitAttentionPooler.forward = original_f, original_pool

    diff = max((ours_out.prompt_embeds - eager_out.prompt_embeds).abs().max().item(),
               (ours_out.pooled_prompt_embeds - eager_out.pooled_prompt_embeds).abs().max().item())
    size = "full size" if args.full_size else "mid size"
    print(f"keyframe decoder ({size}, batch {args.batch}, {args.threads} thread(s), codes {lengths})")
    print(f"  sdpa + single-query pooler: {ours:8.2f} images/s")
    print(f"  eager reference           : {eager:8.2f} images/s")
    print(f"  ratio ours / eager        : {ours / eager:8.2f}x   (max |diff| {diff:.2e})")


if __name__ == "__main__":
    main()
