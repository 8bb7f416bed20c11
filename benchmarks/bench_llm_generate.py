"""Understanding generation speed of VideoLavitForConditionalGeneration: batched vs row by row, KV cache vs none.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_llm_generate.py
Prints ratios measured in one run (random weights, a mid-size Llama, precomputed keyframe features and motion codes,
so only the language model is timed).
"""

import time

import torch
from transformers.utils import logging as hf_logging

import video_lavit  # noqa: F401
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration


def build(hidden=512, layers=4):
    config = VideoLavitConfig(
        text_config=dict(vocab_size=1000 + 2 + 64 + 2 + 32, hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=4096),
        visual_tokenizer_config=dict(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, clip_projection_dim=16,
                                     merger_num_hidden_layers=1, merger_num_attention_heads=2,
                                     merger_intermediate_size=64, codebook_size=64, code_dim=8, projection_dim=hidden),
        motion_tokenizer_config=dict(hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
                                     decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=32, code_dim=8),
        text_vocab_size=1000,
    )
    torch.manual_seed(0)
    return VideoLavitForConditionalGeneration(config).eval()


def timed(fn, repeats=2):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    hf_logging.set_verbosity_error()
    model = build()
    hidden = model.config.text_config.hidden_size
    g = torch.Generator().manual_seed(0)
    batch, clips, new_tokens = 4, 2, 32
    ids = torch.tensor([[1, 50, 60, -201, 70, 80]] * batch)
    features = [torch.randn(90, hidden, generator=g) for _ in range(batch * clips)]
    motion = torch.randint(0, 32, (batch * clips, 135), generator=g)
    common = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    def batched(use_cache=True):
        return model.generate(input_ids=ids, visual_features=features, motion_token_ids=motion,
                              clips_per_video=torch.tensor([clips] * batch), use_cache=use_cache, **common)

    def rows():
        for b in range(batch):
            model.generate(input_ids=ids[b : b + 1], visual_features=features[b * clips : (b + 1) * clips],
                           motion_token_ids=motion[b * clips : (b + 1) * clips], clips_per_video=torch.tensor([clips]),
                           **common)

    t_batched = timed(batched)
    t_rows = timed(rows)
    t_nocache = timed(lambda: batched(use_cache=False), repeats=1)
    prompt = 4 + clips * (90 + 2 + 135 + 2) + 1
    print(f"{batch} rows, prompt {prompt} positions, {new_tokens} new tokens, hidden {hidden}, "
          f"{model.config.text_config.num_hidden_layers} layers, threads {torch.get_num_threads()}")
    print(f"batched {t_batched:.2f}s | row by row {t_rows:.2f}s -> batched is {t_rows / t_batched:.2f}x faster")
    print(f"KV cache {t_batched:.2f}s | no cache {t_nocache:.2f}s -> cache is {t_nocache / t_batched:.2f}x faster")


if __name__ == "__main__":
    main()
