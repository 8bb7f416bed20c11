"""VideoLavitReconstructionPipeline on tiny random components, and the mp4/gif writers."""

import av
import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

from video_lavit.conversion.convert_video_detokenizer import SVD_SCHEDULER_CONFIG
from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from video_lavit.modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from video_lavit.modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
from video_lavit.modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline
from video_lavit.pipelines.video_export import export_to_gif, export_to_mp4

HEIGHT, WIDTH, FRAMES, STEPS = 32, 48, 4, 2  # size multiple of the tiny config: 8 (VAE) * 2 (one down-sampling)


def tiny_components(with_tokenizer: bool = False, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    unet = VideoLavitUNetSpatioTemporalConditionModel(
        sample_size=None,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=16,
        num_attention_heads=(2, 4),
        num_frames=FRAMES,
    )
    encoder = VideoLavitMotionConditionEncoder(out_channels=16, hidden_size=16, num_attention_heads=2, num_layers=1)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
    )
    # Random weights everywhere so that no conditioning path is a no-op by zero initialisation.
    with torch.no_grad():
        for module in (unet, encoder, vae):
            for p in module.parameters():
                p.copy_(torch.randn_like(p) * 0.1)
    tokenizer = None
    if with_tokenizer:
        config = VideoLavitMotionTokenizerConfig(
            hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=[1, 1, 1, 1],
            decoder_blocks_per_stage=[1, 1, 1, 1], codebook_size=16, code_dim=8,
        )
        tokenizer = VideoLavitMotionTokenizer(config).eval()
    return dict(
        vae=vae.eval(), unet=unet.eval(), scheduler=EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG),
        motion_encoder=encoder.eval(), motion_tokenizer=tokenizer,
    )


@pytest.fixture(scope="module")
def pipe():
    pipeline = VideoLavitReconstructionPipeline(**tiny_components())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="module")
def pipe_with_tokenizer():
    pipeline = VideoLavitReconstructionPipeline(**tiny_components(with_tokenizer=True, seed=1))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def inputs(batch=1, frames=FRAMES, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, HEIGHT, WIDTH, generator=g)
    motion = torch.randn(batch, 2, frames, HEIGHT // 8, WIDTH // 8, generator=g)
    return image, motion


def run(pipe, seed=0, **kwargs):
    image, motion = inputs()
    kwargs.setdefault("motion", motion)
    kwargs.setdefault("output_type", "np")
    return pipe(image, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), **kwargs).frames


def test_generator_makes_output_reproducible(pipe):
    a, b, c = run(pipe, seed=3), run(pipe, seed=3), run(pipe, seed=4)
    assert a.shape == (1, FRAMES, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_output_types(pipe):
    pil = run(pipe, output_type="pil")
    assert len(pil) == 1 and len(pil[0]) == FRAMES and pil[0][0].size == (WIDTH, HEIGHT)
    pt = run(pipe, output_type="pt")
    assert pt.shape == (1, FRAMES, 3, HEIGHT, WIDTH) and 0 <= pt.min() and pt.max() <= 1
    np.testing.assert_allclose(pt.permute(0, 1, 3, 4, 2).numpy(), run(pipe), atol=1e-6)
    latents = run(pipe, output_type="latent")
    assert latents.shape == (1, FRAMES, 4, HEIGHT // 8, WIDTH // 8)
    with pytest.raises(ValueError, match="output_type"):
        run(pipe, output_type="video")


def test_unconditional_half_zeroes_all_conditions_and_keyframe_latents_are_unscaled(pipe):
    image, motion = inputs()
    noise = torch.randn(1, 3, HEIGHT, WIDTH)
    seen = {}

    def hook(module, args, kwargs):
        seen.setdefault("sample", args[0].clone())
        seen.setdefault("context", kwargs["encoder_hidden_states"].clone())

    handle = pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        pipe(image, motion=motion, num_inference_steps=1, keyframe_noise=noise, output_type="latent")
    finally:
        handle.remove()
    sample, context = seen["sample"], seen["context"]
    assert sample.shape == (2, FRAMES, 10, HEIGHT // 8, WIDTH // 8)
    assert torch.count_nonzero(sample[0, :, 4:]) == 0 and torch.count_nonzero(context[0]) == 0
    assert torch.count_nonzero(context[1]) > 0
    expected = pipe.vae.encode(image * 2 - 1 + 0.02 * noise).latent_dist.mode()  # no scaling factor
    torch.testing.assert_close(sample[1, :, 4:8], expected.expand(FRAMES, -1, -1, -1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sample[1, :, 8:], motion[0].transpose(0, 1))


def test_per_frame_guidance_ramp_and_callback(pipe):
    calls = []

    def callback(p, i, t, tensors):
        calls.append((i, tensors["latents"].shape, tensors["noise_pred"].shape))
        return {}

    run(pipe, min_guidance_scale=1.0, max_guidance_scale=3.0, callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "noise_pred"])
    torch.testing.assert_close(pipe.guidance_scale.flatten(), torch.linspace(1.0, 3.0, FRAMES))
    assert [c[0] for c in calls] == list(range(STEPS))
    assert calls[0][1] == calls[0][2] == (1, FRAMES, 4, HEIGHT // 8, WIDTH // 8)
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        run(pipe, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["image_latents"])


def test_callback_can_replace_latents(pipe):
    zeroed = run(pipe, output_type="latent", callback_on_step_end=lambda p, i, t, k: {"latents": torch.zeros_like(k["latents"])})
    assert torch.count_nonzero(zeroed) == 0


def test_decode_chunk_size_changes_temporal_decoding(pipe):
    whole, single = run(pipe, decode_chunk_size=FRAMES), run(pipe, decode_chunk_size=1)
    assert whole.shape == single.shape and np.abs(whole - single).max() > 1e-4


def test_motion_token_ids_go_through_the_motion_tokenizer(pipe_with_tokenizer):
    pipe = pipe_with_tokenizer
    config = pipe.motion_tokenizer.config
    ids = torch.randint(0, config.codebook_size, (config.num_motion_tokens,), generator=torch.Generator().manual_seed(0))
    image = torch.rand(1, 3, HEIGHT, WIDTH)
    from_ids = pipe(image, motion_token_ids=ids, num_inference_steps=1, output_type="latent",
                    generator=torch.Generator().manual_seed(0)).frames
    motion = pipe.motion_tokenizer.reconstruct(ids[None], size=(HEIGHT // 8, WIDTH // 8))
    from_field = pipe(image, motion=motion, num_inference_steps=1, output_type="latent",
                      generator=torch.Generator().manual_seed(0)).frames
    assert from_ids.shape[1] == config.num_frames
    torch.testing.assert_close(from_ids, from_field)


def test_bad_motion_tokens(pipe_with_tokenizer, pipe):
    config = pipe_with_tokenizer.motion_tokenizer.config
    image = torch.rand(1, 3, HEIGHT, WIDTH)
    n = config.num_motion_tokens
    with pytest.raises(ValueError, match=rf"\[0, {config.codebook_size - 1}\]"):
        pipe_with_tokenizer(image, motion_token_ids=torch.full((n,), config.codebook_size))
    with pytest.raises(ValueError, match=r"\[0, "):
        pipe_with_tokenizer(image, motion_token_ids=torch.full((n,), -1))
    with pytest.raises(ValueError, match=f"exactly {n} motion tokens, got {n - 1}"):
        pipe_with_tokenizer(image, motion_token_ids=torch.zeros(n - 1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer ids"):
        pipe_with_tokenizer(image, motion_token_ids=torch.zeros(n))
    with pytest.raises(ValueError, match="1 keyframe"):
        pipe_with_tokenizer(image, motion_token_ids=torch.zeros(2, n, dtype=torch.long))
    with pytest.raises(ValueError, match="motion_tokenizer"):
        pipe(image, motion_token_ids=torch.zeros(n, dtype=torch.long))


def test_bad_sizes_and_motion(pipe):
    image, motion = inputs()
    with pytest.raises(ValueError, match=f"multiples of {pipe.size_multiple}, got 40x48"):
        pipe(torch.rand(1, 3, 40, WIDTH), motion=torch.randn(1, 2, FRAMES, 5, 6))
    with pytest.raises(ValueError, match=f"keyframe is {HEIGHT}x{WIDTH}.*64x{WIDTH}"):
        pipe(image, motion=motion, height=64)
    with pytest.raises(ValueError, match="motion must have shape"):
        pipe(image, motion=torch.randn(1, 2, FRAMES, 5, 6))
    with pytest.raises(ValueError, match="motion must have shape"):
        pipe(image, motion=motion, num_frames=FRAMES + 1)
    with pytest.raises(ValueError, match="exactly one of"):
        pipe(image)
    with pytest.raises(TypeError, match="image must be"):
        pipe("keyframe.png", motion=motion)
    assert VideoLavitReconstructionPipeline(**{**tiny_components(), "unet": _released_shape_unet()}).size_multiple == 64


def _released_shape_unet():
    with torch.device("meta"):
        return VideoLavitUNetSpatioTemporalConditionModel()


def test_pil_keyframe_and_unbatched_motion(pipe):
    image, motion = inputs()
    pil = PIL.Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    a = pipe(pil, motion=motion[0], num_inference_steps=1, output_type="latent", generator=torch.Generator().manual_seed(0)).frames
    b = pipe(torch.from_numpy(np.array(pil)).permute(2, 0, 1)[None] / 255.0, motion=motion, num_inference_steps=1,
             output_type="latent", generator=torch.Generator().manual_seed(0)).frames
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_save_and_load_regenerates_identical_frames(tmp_path, pipe_with_tokenizer):
    pipe_with_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model_index.json").is_file() and (tmp_path / "motion_encoder" / "config.json").is_file()
    loaded = VideoLavitReconstructionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.unet, VideoLavitUNetSpatioTemporalConditionModel)
    assert isinstance(loaded.motion_tokenizer, VideoLavitMotionTokenizer)
    np.testing.assert_allclose(run(loaded), run(pipe_with_tokenizer), atol=1e-4)


def test_save_and_load_without_motion_tokenizer(tmp_path, pipe):
    pipe.save_pretrained(tmp_path)
    loaded = VideoLavitReconstructionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.motion_tokenizer is None
    np.testing.assert_allclose(run(loaded), run(pipe), atol=1e-4)


# ------------------------------------------------------------------------------------------ video export
def _read(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream.codec_context.name, frames


@pytest.mark.parametrize("kind", ["pil", "np_float", "np_uint8", "pt"])
def test_export_to_mp4_accepts_every_frame_layout(tmp_path, kind):
    rng = np.random.default_rng(0)
    base = np.repeat(rng.integers(0, 255, (5, 1, 1, 3), dtype=np.uint8), 32, 1).repeat(48, 2)  # flat colours
    frames = {
        "pil": [PIL.Image.fromarray(f) for f in base],
        "np_float": base / 255.0,
        "np_uint8": base,
        "pt": torch.from_numpy(base).permute(0, 3, 1, 2) / 255.0,
    }[kind]
    codec, decoded = _read(export_to_mp4(frames, tmp_path / "clip.mp4", fps=6))
    assert codec == ("h264" if "libx264" in av.codecs_available else "mpeg4")
    assert len(decoded) == 5 and decoded[0].shape == (32, 48, 3)
    assert np.abs(np.stack(decoded).astype(int) - base.astype(int)).mean() < 6


def test_export_handles_odd_sizes_and_gif(tmp_path):
    frames = np.stack([np.full((33, 35, 3), v, dtype=np.uint8) for v in (40, 120, 200)])
    codec, decoded = _read(export_to_mp4(frames, tmp_path / "odd.mp4", fps=8))
    assert decoded[0].shape == (34, 36, 3) and len(decoded) == 3
    _, mpeg4 = _read(export_to_mp4(frames, tmp_path / "mpeg4.mp4", fps=8, codec="mpeg4"))
    assert len(mpeg4) == 3
    gif = PIL.Image.open(export_to_gif(frames, tmp_path / "clip.gif", fps=5))
    assert gif.n_frames == 3 and gif.size == (35, 33) and gif.info["duration"] == 200
    gif.seek(2)
    assert abs(int(np.asarray(gif.convert("RGB"))[0, 0, 0]) - 200) <= 2


def test_export_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        export_to_mp4(np.full((2, 8, 8, 3), 2.0), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="one video"):
        export_to_mp4(np.zeros((1, 2, 8, 8, 3), dtype=np.uint8), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="fps"):
        export_to_gif(np.zeros((2, 8, 8, 3), dtype=np.uint8), tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="no frames"):
        export_to_gif([], tmp_path / "a.gif")


def test_cpu_offload_sequence_names_every_model_component(pipe_with_tokenizer):
    sequence = pipe_with_tokenizer.model_cpu_offload_seq.split("->")
    models = {name for name, c in pipe_with_tokenizer.components.items() if isinstance(c, torch.nn.Module)}
    assert set(sequence) == models


def test_batch_with_generator_list_equals_separate_clips(pipe):
    image, motion = inputs(batch=2, seed=5)

    def call(img, mot, seeds):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return pipe(img, motion=mot, num_inference_steps=STEPS, generator=gens, output_type="latent").frames

    batched = call(image, motion, [7, 8])
    assert batched.shape == (2, FRAMES, 4, HEIGHT // 8, WIDTH // 8)
    for i, seed in enumerate((7, 8)):
        torch.testing.assert_close(batched[i : i + 1], call(image[i : i + 1], motion[i : i + 1], [seed]), atol=1e-4, rtol=1e-4)
