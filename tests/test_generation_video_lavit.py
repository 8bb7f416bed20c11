"""Keyframe/motion token generation: processors, CFG (batched vs transformers' unbatched), seeded sampling,
long video, image-to-video, pruning to the clip length, bad input, and parity with the original."""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessor

from video_lavit.conversion import verify_parity
from video_lavit.modeling.generation_video_lavit import (
    BatchedClassifierFreeGuidanceLogitsProcessor,
    GeneratorSamplingLogitsProcessor,
    TokenRangeLogitsProcessor,
    VideoLavitTokenLayout,
    VideoLavitVideoTokenGenerationMixin,
)

LAYOUT = dict(
    image_start_token_id=32, image_end_token_id=33, visual_token_offset=34, visual_vocab_size=24,
    motion_start_token_id=58, motion_end_token_id=59, motion_token_offset=60, motion_vocab_size=16,
    num_motion_tokens=8,
)


class TinyVideoLavitLM(VideoLavitVideoTokenGenerationMixin, LlamaForCausalLM):
    """Any causal LM with the layout fields on its config can carry the mixin."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    config = LlamaConfig(
        vocab_size=76, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=160, bos_token_id=1, eos_token_id=2, **LAYOUT,
    )
    torch.manual_seed(0)
    model = TinyVideoLavitLM(config)
    path = tmp_path_factory.mktemp("tiny_lm")
    model.save_pretrained(path)
    return TinyVideoLavitLM.from_pretrained(path, dtype=torch.float32).eval()


PROMPTS = [torch.tensor([1, 5, 9, 13, 17]), torch.tensor([7, 6, 10])]


def _kw(**overrides):
    kw = dict(max_new_tokens=12, min_new_tokens=3, show_progress=False)
    kw.update(overrides)
    return kw


def _ikw(**overrides):
    kw = _kw(**overrides)
    kw.pop("show_progress")
    return kw


def test_layout_from_config_and_released_defaults(tiny):
    layout = tiny.token_layout
    assert (layout.image_start_token_id, layout.visual_token_offset, layout.motion_token_offset) == (32, 34, 60)
    assert layout.motion_tokens_per_clip == 8 and layout.vocab_size == 76 and layout.pad_token_id == 2
    assert layout.keyframe_allowed_ranges == [(0, 3), (32, 58)]
    assert layout.motion_allowed_ranges == [(0, 3), (58, 76)]
    released = VideoLavitTokenLayout()
    assert released.keyframe_allowed_ranges == [(0, 3), (32000, 48386)]
    assert released.motion_allowed_ranges == [(0, 3), (48386, 49412)]


def test_token_range_processor_blocks_everything_else():
    proc = TokenRangeLogitsProcessor([(0, 3), (5, 8)], 10)
    scores = proc(torch.zeros(2, 1, dtype=torch.long), torch.randn(2, 10))
    finite = torch.isfinite(scores)
    assert finite[:, [0, 1, 2, 5, 6, 7]].all() and not finite[:, [3, 4, 8, 9]].any()
    with pytest.raises(ValueError, match="does not fit"):
        TokenRangeLogitsProcessor([(5, 12)], 10)


def test_batched_cfg_processor_is_the_log_softmax_mix():
    scores = torch.randn(4, 9)
    mixed = BatchedClassifierFreeGuidanceLogitsProcessor(3.0, batch_size=2)(None, scores)
    lp = scores.log_softmax(-1)
    expected = 3.0 * (lp[:2] - lp[2:]) + lp[2:]
    torch.testing.assert_close(mixed, torch.cat([expected, expected]))
    with pytest.raises(ValueError, match="expects 4 score rows"):
        BatchedClassifierFreeGuidanceLogitsProcessor(3.0, batch_size=2)(None, torch.randn(3, 9))


def test_generator_sampler_ties_halves_and_matches_multinomial():
    scores = torch.randn(4, 9)
    out = GeneratorSamplingLogitsProcessor(torch.Generator().manual_seed(5), batch_size=2)(None, scores)
    picked = out.argmax(-1)
    assert torch.equal(picked[:2], picked[2:])
    assert (torch.isfinite(out).sum(-1) == 1).all()
    expected = torch.multinomial(scores[:2].softmax(-1), 1, generator=torch.Generator().manual_seed(5)).squeeze(1)
    assert torch.equal(picked[:2], expected)


def test_generated_ids_stay_in_stage_ranges(tiny):
    out = tiny.generate_video_tokens(PROMPTS, num_clips=2, generator=torch.Generator().manual_seed(1), **_kw())
    layout = tiny.token_layout
    for sample in out.keyframe_token_ids:
        for ids in sample:
            assert ((ids < 3) | ((ids >= 32) & (ids < 58))).all(), ids
            assert not (ids == layout.pad_token_id).any()
    assert out.motion_token_ids.shape == (2, 2, 8)
    assert ((out.motion_token_ids >= 60) & (out.motion_token_ids < 76)).all()
    assert torch.equal(out.motion_codes, out.motion_token_ids - 60)
    for sample in out.keyframe_codes:
        for codes in sample:
            assert ((codes >= 0) & (codes < 24)).all()


@pytest.mark.parametrize("do_sample_motion", [False, True])
def test_batched_cfg_gives_the_ids_of_transformers_unbatched_cfg(tiny, do_sample_motion):
    kwargs = _kw(num_clips=2, do_sample_motion=do_sample_motion)
    batched = tiny.generate_video_tokens(PROMPTS, generator=torch.Generator().manual_seed(3), batched_cfg=True, **kwargs)
    unbatched = tiny.generate_video_tokens(PROMPTS, generator=torch.Generator().manual_seed(3), batched_cfg=False, **kwargs)
    assert [s.tolist() for s in batched.sequences] == [s.tolist() for s in unbatched.sequences]
    assert torch.equal(batched.motion_token_ids, unbatched.motion_token_ids)


def test_generator_makes_sampling_reproducible(tiny):
    runs = [
        tiny.generate_image_tokens(PROMPTS, generator=torch.Generator().manual_seed(s), **_ikw()).image_token_ids
        for s in (11, 11, 12)
    ]
    as_lists = [[t.tolist() for t in r] for r in runs]
    assert as_lists[0] == as_lists[1]
    assert as_lists[0] != as_lists[2]


def test_seeded_sampling_consumes_rng_like_transformers_do_sample(tiny):
    """Without CFG our generator-driven sampler reproduces `generate(do_sample=True)` after manual_seed."""
    layout = tiny.token_layout
    ours = tiny.generate_image_tokens(
        [PROMPTS[0]], guidance_scale=None, top_k=5, generator=torch.Generator().manual_seed(21), **_ikw()
    )
    suppress = [i for i in range(76) if not (i < 3 or 32 <= i < 58)]
    prompt = torch.cat([PROMPTS[0], torch.tensor([layout.image_start_token_id])])[None]
    torch.manual_seed(21)
    reference = LlamaForCausalLM.generate(
        tiny, prompt, attention_mask=torch.ones_like(prompt), do_sample=True, top_k=5, max_new_tokens=12,
        min_new_tokens=3, suppress_tokens=suppress, eos_token_id=33, pad_token_id=2,
    )
    generated = reference[0, prompt.shape[1]:]
    assert ours.image_token_ids[0].tolist() == generated[generated != 2].tolist()


def test_long_video_appends_each_clip_to_the_whole_sequence(tiny):
    out = tiny.generate_video_tokens(PROMPTS, num_clips=2, do_sample_image=False, **_kw())
    layout = tiny.token_layout
    for i, seq in enumerate(out.sequences):
        assert seq[: PROMPTS[i].numel()].tolist() == PROMPTS[i].tolist()
        assert int((seq == layout.image_start_token_id).sum()) >= 2
        assert int((seq == layout.motion_start_token_id).sum()) >= 2
    # clip 2's keyframe stage continues the context left by clip 1 (greedy, so it can be re-derived)
    first = tiny.generate_video_tokens(PROMPTS, num_clips=1, do_sample_image=False, **_kw())
    again = tiny.generate_image_tokens(first.sequences, do_sample=False, **_ikw())
    assert [t.tolist() for t in again.image_token_ids] == [s[1].tolist() for s in out.keyframe_token_ids]


def test_motion_stage_is_greedy_in_text_to_video(tiny):
    runs = [
        tiny.generate_video_tokens(
            PROMPTS, do_sample_image=False, generator=torch.Generator().manual_seed(s), **_kw()
        ).motion_token_ids
        for s in (1, 2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_image_to_video_uses_the_given_image_and_samples_motion(tiny):
    codes = [torch.tensor([0, 5, 23, 7]), torch.tensor([3, 3])]
    out = tiny.generate_video_tokens(
        [PROMPTS[0], PROMPTS[1]], image_token_ids=codes, generator=torch.Generator().manual_seed(4), **_kw()
    )
    for i in range(2):
        wrapped = [32] + (codes[i] + 34).tolist() + [33]
        assert out.keyframe_token_ids[i][0].tolist() == wrapped
        assert torch.equal(out.keyframe_codes[i][0], codes[i])
        seq = out.sequences[i].tolist()
        n = PROMPTS[i].numel()
        assert seq[:n] == PROMPTS[i].tolist() and seq[n : n + len(wrapped) + 1] == wrapped + [58]
    sampled = [
        tiny.generate_video_tokens(image_token_ids=codes, generator=torch.Generator().manual_seed(s), **_kw())
        .motion_token_ids
        for s in (4, 5)
    ]
    assert not torch.equal(sampled[0], sampled[1])


class _ForceId(LogitsProcessor):
    """Forces one id at one step (to exercise the removal of generated pads)."""

    def __init__(self, prompt_length, step, token_id):
        self.prompt_length, self.step, self.token_id = prompt_length, step, token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] - self.prompt_length == self.step:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, self.token_id] = 0.0
        return scores


def test_generated_pads_are_deleted(tiny):
    prompt_len = PROMPTS[0].numel() + 1
    plain = tiny.generate_image_tokens([PROMPTS[0]], do_sample=False, **_ikw(min_new_tokens=12))
    forced = tiny.generate_image_tokens(
        [PROMPTS[0]], do_sample=False, logits_processor=[_ForceId(prompt_len, 2, 2)], **_ikw(min_new_tokens=12)
    )
    assert plain.image_token_ids[0].numel() == 12
    assert forced.image_token_ids[0].numel() == 11 and not (forced.image_token_ids[0] == 2).any()


class _BiasedHead(torch.nn.Module):
    def __init__(self, head, bias):
        super().__init__()
        self.head, self.bias = head, bias

    def forward(self, hidden_states):
        return self.head(hidden_states) + self.bias


def _favouring_deleted_ids(model):
    """A copy of `model` that prefers eos and the stages' start tokens, which are deleted after generation."""
    biased = copy.deepcopy(model)
    bias = torch.zeros(model.config.vocab_size)
    bias[[2, 32, 58]] = 50.0
    biased.lm_head = _BiasedHead(biased.lm_head, bias)
    return biased


def test_codes_only_fills_every_position_with_a_code(tiny):
    model = _favouring_deleted_ids(tiny)
    kw = _kw(max_new_tokens=8, min_new_tokens=8)
    original = model.generate_video_tokens(PROMPTS, do_sample_image=False, **kw)
    # as the original: the favoured ids are generated, then deleted -> no keyframe codes, motion padded
    assert all(codes.numel() == 0 for sample in original.keyframe_codes for codes in sample)
    assert (original.motion_token_counts == 0).all()

    out = model.generate_video_tokens(PROMPTS, do_sample_image=False, codes_only=True, **kw)
    for sample in out.keyframe_token_ids:
        assert sample[0].numel() == 8 and ((sample[0] >= 34) & (sample[0] < 58)).all()
    assert (out.motion_token_counts == 8).all()
    assert ((out.motion_token_ids >= 60) & (out.motion_token_ids < 76)).all()
    image = model.generate_image_tokens([PROMPTS[0]], do_sample=False, codes_only=True, **_ikw(min_new_tokens=8,
                                                                                                max_new_tokens=8))
    assert image.image_codes[0].numel() == 8
    # the end token stays allowed after min_new_tokens
    model.lm_head.bias[33] = 100.0
    early = model.generate_video_tokens(PROMPTS, do_sample_image=False, codes_only=True,
                                        **_kw(max_new_tokens=8, min_new_tokens=2))
    assert [sample[0].numel() for sample in early.keyframe_codes] == [2, 2]


def test_motion_pruning_to_clip_length():
    layout = VideoLavitTokenLayout(**{**LAYOUT_FIELDS, "motion_tokens_per_clip": 4})
    ids, count = layout.prune_motion_ids(torch.tensor([58, 61, 1, 62, 59]))
    assert ids.tolist() == [61, 62, 60, 60] and count == 2
    ids, count = layout.prune_motion_ids(torch.tensor([61, 62, 63, 64, 65, 66]))
    assert ids.tolist() == [61, 62, 63, 64] and count == 6


LAYOUT_FIELDS = dict(
    image_start_token_id=32, image_end_token_id=33, visual_token_offset=34, visual_vocab_size=24,
    motion_start_token_id=58, motion_end_token_id=59, motion_token_offset=60, motion_vocab_size=16,
    motion_tokens_per_clip=8, vocab_size=76,
)


def test_wrong_motion_count_reported_or_raised(tiny):
    out = tiny.generate_video_tokens(PROMPTS, do_sample_image=False, **_kw(max_new_tokens=5, min_new_tokens=3))
    assert (out.motion_token_counts <= 5).all() and out.motion_token_ids.shape[-1] == 8
    with pytest.raises(ValueError, match="expected 8 motion tokens"):
        tiny.generate_video_tokens(
            PROMPTS, do_sample_image=False, pad_motion_tokens=False, **_kw(max_new_tokens=5, min_new_tokens=3)
        )
    layout = tiny.token_layout
    with pytest.raises(ValueError, match="expected 8 motion codes"):
        layout.motion_codes_to_ids(torch.zeros(7, dtype=torch.long))
    assert layout.motion_codes_to_ids(torch.arange(8)).tolist() == [58] + list(range(60, 68)) + [59]


def test_bad_input_errors(tiny):
    with pytest.raises(ValueError, match=r"outside \[0, 76\)"):
        tiny.generate_video_tokens([torch.tensor([1, 80])], **_kw())
    with pytest.raises(ValueError, match="placeholders"):
        tiny.generate_video_tokens([torch.tensor([1, -200])], **_kw())
    with pytest.raises(ValueError, match="exceeds the model's context of 160"):
        tiny.generate_video_tokens([torch.ones(150, dtype=torch.long)], **_kw())
    with pytest.raises(TypeError, match="integer ids"):
        tiny.generate_image_tokens([torch.tensor([1.0, 2.0])], **_ikw())
    with pytest.raises(ValueError, match=r"image codes must lie in \[0, 24\)"):
        tiny.generate_video_tokens(image_token_ids=[torch.tensor([3, 24])], **_kw())
    with pytest.raises(ValueError, match="num_clips"):
        tiny.generate_video_tokens(PROMPTS, num_clips=0, **_kw())
    with pytest.raises(ValueError, match="min_new_tokens"):
        tiny.generate_video_tokens(PROMPTS, **_kw(min_new_tokens=20))
    with pytest.raises(ValueError, match="2 text prompts but 1 images"):
        tiny.generate_video_tokens(PROMPTS, image_token_ids=[torch.tensor([1])], **_kw())
    with pytest.raises(ValueError, match="attention_mask shape"):
        tiny.generate_image_tokens(torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 3), **_ikw())
    with pytest.raises(ValueError, match="overlap"):
        VideoLavitTokenLayout(**{**LAYOUT_FIELDS, "visual_vocab_size": 30})


def test_padded_tensor_input_equals_list_input(tiny):
    ids = torch.tensor([[1, 5, 9, 13, 17], [0, 0, 7, 6, 10]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    a = tiny.generate_image_tokens(ids, attention_mask=mask, do_sample=False, **_ikw())
    b = tiny.generate_image_tokens(PROMPTS, do_sample=False, **_ikw())
    assert [t.tolist() for t in a.image_token_ids] == [t.tolist() for t in b.image_token_ids]


def test_parity_llm_t2v(fixtures_dir):
    assert verify_parity.main([str(fixtures_dir), "--only", "llm_t2v*"]) == 0


def test_model_generation_config_does_not_leak_into_token_generation(tiny):
    """Understanding defaults on `model.generation_config` (min_new_tokens, sampling, ...) must not change the stages."""
    kwargs = _kw(num_clips=1)
    reference = tiny.generate_video_tokens(PROMPTS, generator=torch.Generator().manual_seed(8), **kwargs)
    saved = tiny.generation_config
    try:
        tiny.generation_config = copy.deepcopy(saved)
        for name, value in dict(min_new_tokens=8, do_sample=True, top_k=3, repetition_penalty=1.5,
                                suppress_tokens=[40, 41], guidance_scale=2.5, max_new_tokens=512,
                                num_return_sequences=2).items():
            setattr(tiny.generation_config, name, value)
        leaked = tiny.generate_video_tokens(PROMPTS, generator=torch.Generator().manual_seed(8), **kwargs)
    finally:
        tiny.generation_config = saved
    assert [s.tolist() for s in leaked.sequences] == [s.tolist() for s in reference.sequences]
    saved = tiny.generation_config
    try:
        tiny.generation_config = copy.deepcopy(saved)
        tiny.generation_config.bad_words_ids = [[40]]
        with pytest.raises(ValueError, match="bad_words_ids"):
            tiny.generate_video_tokens(PROMPTS, **kwargs)
    finally:
        tiny.generation_config = saved
