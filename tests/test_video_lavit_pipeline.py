"""VideoLavitPipeline end to end on the tiny pipeline of `video_lavit.testing`: text-to-video, long video (clip
stitching and the keyframe noise constraint), image-to-video, text-to-image, save/load, assembly from the parts
saved by the sub-pipelines, CPU offload hooks and input validation."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from transformers.utils import logging as hf_logging

from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from video_lavit.modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from video_lavit.modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from video_lavit.pipelines import VideoLavitPipeline
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.testing import (
    TINY_KEYFRAME_SIZE,
    TINY_MAX_CLIPS,
    TINY_VIDEO_SIZE,
    build_tiny_processor,
    build_tiny_video_lavit,
    build_tiny_video_lavit_pipeline,
)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

KH, KW = TINY_KEYFRAME_SIZE
VH, VW = TINY_VIDEO_SIZE
FRAMES = 24
MOTION_TOKENS = 135
# few diffusion steps; the LLM stops after at most 30 keyframe / 140 motion tokens
FAST = dict(num_inference_steps=1, keyframe_num_inference_steps=2, max_new_tokens=(30, 140))
PROMPT = "a dog running on the beach"


def seeded(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    pipeline = build_tiny_video_lavit_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="module")
def t2v(pipe):
    return pipe(PROMPT, generator=seeded(0), output_type="np", **FAST)


def _bicubic_array(image: PIL.Image.Image, height: int, width: int) -> np.ndarray:
    return np.asarray(image.resize((width, height), PIL.Image.BICUBIC), dtype=np.float32) / 255.0


def test_text_to_video_outputs(pipe, t2v):
    assert t2v.frames.shape == (1, FRAMES, VH, VW, 3) and t2v.frames.dtype == np.float32
    assert 0.0 <= t2v.frames.min() and t2v.frames.max() <= 1.0 and t2v.frames.std() > 0
    assert t2v.keyframes.shape == (1, 1, KH, KW, 3)
    config = pipe.language_model.config
    motion = t2v.motion_token_ids
    assert motion.shape == (1, 1, MOTION_TOKENS)
    assert config.motion_token_offset <= motion.min() and motion.max() < config.motion_token_offset + config.motion_vocab_size
    keyframe_ids = t2v.keyframe_token_ids[0][0]
    assert keyframe_ids.numel() <= FAST["max_new_tokens"][0]
    # the keyframe stage may only emit unk/bos/eos, [IMG], [/IMG] and visual codes
    allowed = (keyframe_ids < 3) | ((keyframe_ids >= config.image_start_token_id) & (keyframe_ids < config.motion_start_token_id))
    assert allowed.all() and (keyframe_ids >= config.visual_token_offset).any()


def test_parts_saved_by_the_sub_pipelines_assemble_save_and_reload_to_identical_frames(pipe, t2v, tmp_path):
    # the parts as the other components' own code saves them (conversion scripts write the same layouts)
    pipe.language_model.save_pretrained(tmp_path / "llm")
    pipe.processor.save_pretrained(tmp_path / "llm")
    pipe.keyframe_pipeline.save_pretrained(tmp_path / "keyframe")
    pipe.video_pipeline.save_pretrained(tmp_path / "video")
    assembled = VideoLavitPipeline.from_parts(
        tmp_path / "llm", tmp_path / "keyframe", tmp_path / "video",
        keyframe_height=KH, keyframe_width=KW, video_height=VH, video_width=VW,
    )
    assembled.save_pretrained(tmp_path / "full")
    index = json.loads((tmp_path / "full" / "model_index.json").read_text())
    assert index["_class_name"] == "VideoLavitPipeline"
    assert index["language_model"] == ["video_lavit.modeling.modeling_video_lavit", "VideoLavitForConditionalGeneration"]
    assert index["processor"] == ["video_lavit.processing.processing_video_lavit", "VideoLavitProcessor"]
    assert index["keyframe_scheduler"] == ["diffusers", "DDIMScheduler"]
    assert index["motion_tokenizer"] == [None, None]
    assert (index["keyframe_height"], index["keyframe_width"], index["video_height"], index["video_width"]) == (KH, KW, VH, VW)
    assert (tmp_path / "full" / "language_model" / "model.safetensors").is_file()

    reloaded = VideoLavitPipeline.from_pretrained(tmp_path / "full")
    reloaded.set_progress_bar_config(disable=True)
    out = reloaded(PROMPT, generator=seeded(0), output_type="np", **FAST)  # default sizes come from the config
    torch.testing.assert_close(out.motion_token_ids, t2v.motion_token_ids, rtol=0, atol=0)
    assert [k.tolist() for k in out.keyframe_token_ids[0]] == [k.tolist() for k in t2v.keyframe_token_ids[0]]
    np.testing.assert_allclose(out.frames, t2v.frames, atol=1e-4)
    # keyframes pass through uint8 (PIL): float noise of ~1e-5 may flip one 1/255 step
    np.testing.assert_allclose(out.keyframes, t2v.keyframes, atol=1 / 255 + 1e-6)


def test_tiny_folder_builder_is_deterministic_and_its_parts_load_alone(pipe, tmp_path):
    folder = build_tiny_video_lavit(tmp_path / "tiny", seed=0)
    llm = VideoLavitForConditionalGeneration.from_pretrained(folder / "language_model")
    processor = VideoLavitProcessor.from_pretrained(folder / "processor")
    assert processor.tokenizer.get_vocab() == pipe.processor.tokenizer.get_vocab()
    for name, tensor in pipe.language_model.state_dict().items():
        torch.testing.assert_close(llm.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "VideoLavitPipeline"
    components = [name for name, value in index.items() if isinstance(value, list) and value[0] is not None]
    assert sorted(components) == sorted(name for name, c in pipe.components.items() if c is not None)
    assert all((folder / name).is_dir() for name in components)
    decoder = VideoLavitKeyframeDecoder.from_pretrained(folder / "keyframe_decoder")
    ours, theirs = pipe.keyframe_decoder.state_dict(), decoder.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_long_video_stitches_clips_and_renoises_the_last_frame(pipe):
    steps, renoised, decoded = [], [], []

    def callback(p, i, t, tensors):
        steps.append((p.stage, p.clip_index, i, tuple(tensors["latents"].shape)))
        return {}

    hooks = [
        pipe.keyframe_vae.encoder.register_forward_pre_hook(lambda m, args: renoised.append(args[0].clone())),
        pipe.video_vae.decoder.register_forward_hook(lambda m, args, out: decoded.append(out.clone())),
    ]
    try:
        out = pipe(PROMPT, num_clips=2, generator=seeded(1), output_type="pt", callback_on_step_end=callback,
                   **{**FAST, "keyframe_num_inference_steps": 4}, keyframe_inverse_rate=0.5)
    finally:
        for hook in hooks:
            hook.remove()

    assert out.frames.shape == (1, 2 * FRAMES - 1, 3, VH, VW)
    assert out.keyframes.shape == (1, 2, 3, KH, KW)
    assert out.motion_token_ids.shape == (1, 2, MOTION_TOKENS) and len(out.keyframe_token_ids[0]) == 2
    assert pipe.stage is None and pipe.clip_index is None

    # clip 1's keyframe runs only the steps after int(0.5 * 4) = 2; both loops report to the one callback
    key_latents, video_latents = (1, 4, KH // 8, KW // 8), (1, FRAMES, 4, VH // 8, VW // 8)
    video_steps = FAST["num_inference_steps"]
    expected = (
        [("keyframe", 0, i, key_latents) for i in range(4)] + [("video", 0, i, video_latents) for i in range(video_steps)]
        + [("keyframe", 1, i, key_latents) for i in range(2)] + [("video", 1, i, video_latents) for i in range(video_steps)]
    )
    assert steps == expected

    # the noise constraint: clip 1's keyframe starts from clip 0's last frame (8-bit, bicubic to the keyframe size)
    assert len(renoised) == 1 and renoised[0].shape == (1, 3, KH, KW)
    last = PIL.Image.fromarray((out.frames[0, FRAMES - 1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    expected_input = torch.from_numpy(_bicubic_array(last, KH, KW)).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(renoised[0][0], expected_input, atol=1e-5, rtol=0)

    # stitching: all of clip 0, then clip 1 without its first frame
    clip_frames = (torch.cat(decoded) / 2 + 0.5).clamp(0, 1)
    assert clip_frames.shape == (2 * FRAMES, 3, VH, VW)
    torch.testing.assert_close(out.frames[0, :FRAMES], clip_frames[:FRAMES], atol=1e-6, rtol=0)
    torch.testing.assert_close(out.frames[0, FRAMES:], clip_frames[FRAMES + 1 :], atol=1e-6, rtol=0)


def test_image_to_video_uses_the_given_image_as_first_keyframe(pipe):
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    encoded, keyframe_unet_calls = [], []
    hooks = [
        pipe.video_vae.encoder.register_forward_pre_hook(lambda m, args: encoded.append(args[0].clone())),
        pipe.keyframe_unet.register_forward_pre_hook(lambda m, args: keyframe_unet_calls.append(1)),
    ]
    try:
        out = pipe(image=image, generator=seeded(2), output_type="pil", noise_aug_strength=0.0, **FAST)
    finally:
        for hook in hooks:
            hook.remove()

    assert not keyframe_unet_calls  # no keyframe is decoded: the image is the keyframe
    assert len(encoded) == 1
    expected = torch.from_numpy(_bicubic_array(image, VH, VW)).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(encoded[0][0], expected, atol=1e-5, rtol=0)
    keyframe = out.keyframes[0][0]
    assert keyframe.size == (KW, KH)
    np.testing.assert_array_equal(np.asarray(keyframe), np.asarray(image.resize((KW, KH), PIL.Image.BICUBIC)))
    assert len(out.frames) == 1 and len(out.frames[0]) == FRAMES and out.frames[0][0].size == (VW, VH)
    # the first clip's "keyframe tokens" are the image's own tokens, wrapped as [IMG] codes [/IMG]
    config = pipe.language_model.config
    ids = out.keyframe_token_ids[0][0]
    assert ids[0] == config.image_start_token_id and ids[-1] == config.image_end_token_id
    assert ((ids[1:-1] >= config.visual_token_offset) & (ids[1:-1] < config.motion_start_token_id)).all()


def test_text_to_image_seeds_sizes_and_output_types(pipe):
    kwargs = dict(num_inference_steps=2, max_new_tokens=30)
    first = pipe.generate_image("a red car", generator=seeded(0), output_type="np", **kwargs)
    again = pipe.generate_image("a red car", generator=seeded(0), output_type="np", **kwargs)
    other = pipe.generate_image("a red car", generator=seeded(1), output_type="np", **kwargs)
    assert first.images.shape == (1, KH, KW, 3)
    np.testing.assert_array_equal(first.images, again.images)
    assert np.abs(first.images - other.images).max() > 1e-3
    config = pipe.language_model.config
    assert (first.image_token_ids[0] >= config.visual_token_offset).any()
    pil = pipe.generate_image(["a red car", "a cat"], height=64, width=64, generator=seeded(0), **kwargs).images
    assert [im.size for im in pil] == [(64, 64), (64, 64)]


def test_model_cpu_offload_hooks_give_the_same_video(pipe, t2v):
    pipe.enable_model_cpu_offload(device="cpu")
    try:
        assert len(pipe._all_hooks) == 7  # the LLM and six detokenizer models (no separate motion_tokenizer)
        assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in ("language_model", "video_unet", "keyframe_vae"))
        out = pipe(PROMPT, generator=seeded(0), output_type="np", **FAST)
    finally:
        pipe.remove_all_hooks()
    np.testing.assert_allclose(out.frames, t2v.frames, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(height=100), ValueError, "video height must be a positive multiple of 64, got 100"),
        (dict(width=0), ValueError, "video width must be a positive multiple of 64, got 0"),
        (dict(keyframe_width=96), ValueError, "keyframe width must be a positive multiple of 64, got 96"),
        (dict(prompt=""), ValueError, "prompt 0 is empty"),
        (dict(prompt=["a cat", "   "]), ValueError, "prompt 1 is empty"),
        (dict(prompt=None), ValueError, "pass a `prompt`"),
        (dict(prompt=3), TypeError, "prompt must be a string"),
        (dict(num_clips=0), ValueError, rf"num_clips must be an int in \[1, {TINY_MAX_CLIPS}\]"),
        (dict(num_clips=TINY_MAX_CLIPS + 1), ValueError, rf"in \[1, {TINY_MAX_CLIPS}\].*got {TINY_MAX_CLIPS + 1}"),
        (dict(output_type="latent"), ValueError, "output_type"),
        (dict(generator=[torch.Generator()]), TypeError, "one torch.Generator"),
        (dict(prompt=["a", "b"], image=[PIL.Image.new("RGB", (8, 8))]), ValueError, "2 prompts but 1 images"),
        (dict(image="dog.jpg"), TypeError, "image must be a PIL image"),
        (dict(image=np.full((8, 8, 3), 2.0)), ValueError, r"uint8 or float in \[0, 1\]"),
        (dict(callback_on_step_end_tensor_inputs=["noise_pred"]), ValueError, "not among"),
        (dict(keyframe_inverse_rate=1.0), ValueError, "keyframe_inverse_rate"),
        (dict(num_inference_steps=0), ValueError, "num_inference_steps must be a positive int"),
        (dict(keyframe_num_inference_steps=0), ValueError, "keyframe_num_inference_steps"),
    ],
)
def test_bad_input_raises_before_generation(pipe, kwargs, error, match):
    calls = []
    hook = pipe.language_model.register_forward_pre_hook(lambda m, args: calls.append(1))
    try:
        with pytest.raises(error, match=match):
            pipe(**{"prompt": PROMPT, **FAST, **kwargs})
    finally:
        hook.remove()
    assert not calls  # rejected before the LLM ran


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(prompt=""), ValueError, "prompt 0 is empty"),
        (dict(height=96), ValueError, "image height must be a positive multiple of 64, got 96"),
        (dict(output_type="latent"), ValueError, "output_type"),
    ],
)
def test_generate_image_bad_input(pipe, kwargs, error, match):
    with pytest.raises(error, match=match):
        pipe.generate_image(**{"prompt": "a cat", **kwargs})


def test_mismatched_components_are_rejected(pipe):
    components = dict(pipe.components)
    decoder = VideoLavitKeyframeDecoder(
        codebook_size=16, code_dim=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
        num_queries=16, feature_dim=16, prompt_embed_dims=(12, 20), pooled_embed_dim=20, pooler_num_heads=2,
    )
    with pytest.raises(ValueError, match=r"keyframe_decoder.codebook_size \(16\) != the LLM's visual codebook size \(32\)"):
        VideoLavitPipeline(**{**components, "keyframe_decoder": decoder})
    motion = VideoLavitMotionTokenizer(VideoLavitMotionTokenizerConfig(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=8, code_dim=8,
    ))
    with pytest.raises(ValueError, match="motion_tokenizer has 8 codes and 135 tokens per clip, the LLM 16 and 135"):
        VideoLavitPipeline(**{**components, "motion_tokenizer": motion})
    with pytest.raises(ValueError, match="pass `processor`"):
        VideoLavitPipeline.from_parts(pipe.language_model, pipe.keyframe_pipeline, pipe.video_pipeline)


def test_prompt_ids_beyond_the_text_vocabulary_are_rejected(pipe):
    # a piece added to the tokenizer would collide with the LLM's [IMG] / visual ids
    processor = build_tiny_processor()
    processor.tokenizer.add_tokens(["<scene>"])
    pipeline = VideoLavitPipeline(**{**pipe.components, "processor": processor})
    text_vocab_size = pipe.language_model.config.text_vocab_size
    with pytest.raises(ValueError, match=rf"prompt 0 encodes to id {text_vocab_size}, outside the LLM's {text_vocab_size} text ids"):
        pipeline("a dog <scene>", **FAST)


@pytest.mark.slow  # every default (500/500 LLM tokens, 50 + 25 diffusion steps): ~35 s on a loaded 2-core machine
def test_saved_tiny_folder_runs_with_every_default(tmp_path):
    pipeline = VideoLavitPipeline.from_pretrained(build_tiny_video_lavit(tmp_path / "tiny"))
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(PROMPT, generator=seeded(0))
    assert len(out.frames) == 1 and len(out.frames[0]) == FRAMES and out.frames[0][0].size == (VW, VH)
    assert out.keyframes[0][0].size == (KW, KH) and out.motion_token_ids.shape == (1, 1, MOTION_TOKENS)
    assert pipeline.generate_image(PROMPT, generator=seeded(0)).images[0].size == (KW, KH)


@pytest.mark.slow  # bf16 weights on the CPU through image-to-video and a second clip
def test_bfloat16_image_to_long_video(tmp_path):
    pipeline = VideoLavitPipeline.from_pretrained(build_tiny_video_lavit(tmp_path / "tiny"), dtype=torch.bfloat16)
    pipeline.set_progress_bar_config(disable=True)
    assert pipeline.language_model.dtype == torch.bfloat16 and pipeline.video_unet.dtype == torch.bfloat16
    image = PIL.Image.new("RGB", (50, 40), "red")
    out = pipeline(image=image, prompt="a car", num_clips=2, generator=seeded(0), output_type="np", **FAST)
    assert out.frames.shape == (1, 2 * FRAMES - 1, VH, VW, 3) and out.frames.dtype == np.float32
    assert np.isfinite(out.frames).all() and out.frames.std() > 0
