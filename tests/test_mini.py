"""The miniature Video-LaVIT: synthetic data, metric scripts, pixel judge, and the shipped trained model."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

import video_lavit
from video_lavit.mini.data import (
    COLOURS,
    DIRECTIONS,
    QA_TEMPLATES,
    SHAPES,
    SceneSpec,
    build_dataset,
    encode_scene,
    random_scene,
    render_frames,
)
from video_lavit.mini.evaluate import GENERATION_KWARGS, load_metric
from video_lavit.mini.judge import read_blob
from video_lavit.mini.train import understanding_prompt

MODEL = Path(video_lavit.MINI_MODEL_PATH)
requires_model = pytest.mark.skipif(not (MODEL / "model_index.json").is_file(), reason="shipped model missing")


def _words(text: str) -> list[str]:
    return text.lower().replace("?", " ").replace(".", " ").replace(",", " ").split()


def test_dataset_captions_answers_and_variety():
    ds = build_dataset(12, seed=3)
    assert len(ds) == 12
    for row in ds:
        assert row["caption"] == f"a {row['colour']} {row['shape']} moves {row['direction']}"
        answer = _words(row["answer"])
        assert row["colour"] in answer and row["shape"] in answer and row["direction"] in answer
        # exactly one value of each attribute, so an answer can't be right by listing everything
        assert sum(c in answer for c in COLOURS) == 1 and sum(d in answer for d in DIRECTIONS) == 1
        assert SceneSpec(**row["scene"]).caption == row["caption"]
    assert len(set(ds["question"])) >= 4
    assert {q for q, _ in QA_TEMPLATES} >= set(ds["question"])
    # rows cycle through distinct (colour, shape, direction) combinations
    assert len(set(ds["caption"])) == 12
    scenes = [SceneSpec(**s) for s in ds["scene"]]
    assert len({(s.width, s.height) for s in scenes}) >= 3 and len({s.fps for s in scenes}) >= 3
    assert len({round(s.speed, 5) for s in scenes}) == 12 and len({round(s.size, 5) for s in scenes}) == 12


def test_video_is_decodable_and_motion_matches_direction():
    rng = np.random.default_rng(0)
    spec = random_scene(rng, "yellow", "triangle", "up")
    data = encode_scene(spec, codec="mpeg4")
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == round(spec.seconds * spec.fps)
    assert frames[0].shape == (spec.height, spec.width, 3)
    reading = read_blob(np.stack(frames))
    assert (reading.colour, reading.shape, reading.direction) == ("yellow", "triangle", "up")
    # the shape stays inside the frame for the whole clip
    last = render_frames(spec, [spec.seconds])[0]
    assert (np.abs(last[0].astype(int) - spec.background).max() < 40) and (np.abs(last[-1].astype(int) - spec.background).max() < 40)


def test_codecs_cycle_and_evaluation_renderer_is_unseen():
    from video_lavit.mini.data import TRAIN_CODECS, TRAIN_FPS, TRAIN_SIZES
    from video_lavit.mini.evaluate import OTHER_CODECS, OTHER_FPS, OTHER_SIZES

    ds = build_dataset(3, seed=4, codec=("libx264", "libvpx-vp9"))
    assert ds["codec"] == ["libx264", "libvpx-vp9", "libx264"]
    assert ds[0]["video"][4:8] == b"ftyp" and ds[1]["video"][:4] == b"\x1a\x45\xdf\xa3"  # mp4, then webm (EBML)
    with av.open(io.BytesIO(ds[1]["video"])) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
        assert len(list(container.decode(video=0))) == round(4.0 * SceneSpec(**ds[1]["scene"]).fps)
    with pytest.raises(ValueError, match="at least one codec"):
        build_dataset(1, seed=0, codec=())
    # the "other renderer" of the evaluation shares no size, frame rate or (new) codec with training
    assert not set(OTHER_SIZES) & set(TRAIN_SIZES) and not set(OTHER_FPS) & set(TRAIN_FPS)
    assert {"mpeg2video", "libvpx-vp9"} <= set(OTHER_CODECS) and not {"mpeg2video", "libvpx-vp9"} & set(TRAIN_CODECS)


def test_bad_scene_raises():
    with pytest.raises(ValueError, match="colour"):
        SceneSpec("purple", "circle", "left", 0.5, 0.5, 0.3, 0.1, 6.0, 64, 64, 20)
    with pytest.raises(ValueError, match="direction"):
        SceneSpec("red", "circle", "sideways", 0.5, 0.5, 0.3, 0.1, 6.0, 64, 64, 20)
    with pytest.raises(ValueError, match="even"):
        SceneSpec("red", "circle", "left", 0.5, 0.5, 0.3, 0.1, 6.0, 63, 64, 20)


def test_pixel_judge_reads_every_combination():
    rng = np.random.default_rng(1)
    for colour in COLOURS:
        for shape in SHAPES:
            for direction in DIRECTIONS:
                spec = random_scene(rng, colour, shape, direction)
                reading = read_blob(render_frames(spec, np.arange(24) / 6.0, 64, 64))
                assert reading.description == f"{colour} {shape} {direction}"
    blank = np.full((24, 64, 64, 3), 20, dtype=np.uint8)
    assert read_blob(blank).description == "none none none"
    with pytest.raises(ValueError, match="T, H, W, 3"):
        read_blob(blank[0])


def test_metric_scripts():
    metric = load_metric("video_attribute_accuracy")
    out = metric.compute(
        predictions=["the red circle moves left", "a red square moves left", "a red or blue circle moves left", ""],
        references=["a red circle moves left"] * 4,
    )
    assert out == {"accuracy": 0.25, "colour_accuracy": 0.5, "shape_accuracy": 0.5, "direction_accuracy": 0.75}
    with pytest.raises(ValueError, match="exactly one"):
        metric.compute(predictions=["a red circle"], references=["a red circle"])
    motion = load_metric("motion_reconstruction_error")
    ref = [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, -2.0, -2.0]]
    exact = motion.compute(predictions=ref, references=ref)
    assert exact["mse"] == 0 and exact["relative_error"] == 0 and exact["mean_direction_cosine"] == pytest.approx(1.0)
    zero = motion.compute(predictions=[[0.0] * 4] * 2, references=ref)
    assert zero["relative_error"] == pytest.approx(1.0) and zero["mse"] == pytest.approx(10 / 8)


def test_pretraining_keyframes_labels_match_pixels():
    from video_lavit.mini.modeling import IMAGE_SIZE, PATCH_SIZE, build_processor
    from video_lavit.mini.train import render_pretraining_keyframes

    rows = render_pretraining_keyframes(build_processor(), 12, seed=5)
    assert rows["pixel_values"].shape == (12, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert rows["cover"].shape == (12, (IMAGE_SIZE // PATCH_SIZE) ** 2)
    assert rows["cover"].min() >= 0 and rows["cover"].max() <= 1
    # the shape covers 24-34 % of the shorter side: a few patches, never none, never all
    covered = rows["cover"].sum(dim=1)
    assert (covered > 0.5).all() and (covered < 4).all()
    # colour labels agree with the pixels: the most-covered patch is closest to the labelled palette colour
    mean = torch.tensor(build_processor().image_processor.image_mean).view(3, 1, 1)
    std = torch.tensor(build_processor().image_processor.image_std).view(3, 1, 1)
    palette = torch.tensor(list(COLOURS.values()), dtype=torch.float32) / 255
    for image, cover, colour in zip(rows["pixel_values"], rows["cover"], rows["colour"]):
        pixels = (image * std + mean).clamp(0, 1)
        patch = int(cover.argmax())
        y, x = divmod(patch, IMAGE_SIZE // PATCH_SIZE)
        block = pixels[:, y * PATCH_SIZE : (y + 1) * PATCH_SIZE, x * PATCH_SIZE : (x + 1) * PATCH_SIZE]
        brightest = block.flatten(1)[:, block.flatten(1).sum(0).argmax()]
        assert int(((palette - brightest) ** 2).sum(1).argmin()) == int(colour)
    assert set(rows["shape"].tolist()) <= set(range(len(SHAPES)))
    # seeded: the same rows again
    again = render_pretraining_keyframes(build_processor(), 12, seed=5)
    assert torch.equal(again["pixel_values"], rows["pixel_values"]) and torch.equal(again["shape"], rows["shape"])


def test_keyframe_pairs_codes_and_targets():
    from video_lavit.mini.modeling import (
        KEYFRAME_SIZE,
        NUM_PATCHES,
        VISUAL_CODES,
        build_language_model,
        build_processor,
    )
    from video_lavit.mini.train import render_keyframe_pairs

    processor = build_processor()
    torch.manual_seed(0)
    model = build_language_model(len(processor.tokenizer)).eval()
    codes, targets = render_keyframe_pairs(processor, model, 6, seed=4)
    assert targets.shape == (6, KEYFRAME_SIZE, KEYFRAME_SIZE, 3) and targets.dtype == torch.uint8
    assert len(codes) == 6 and all(c.shape == (NUM_PATCHES,) for c in codes)
    assert all(0 <= int(c.min()) and int(c.max()) < VISUAL_CODES for c in codes)
    # every target shows one shape in a palette colour on its dark background
    for frame in targets.numpy():
        assert read_blob(np.stack([frame, frame])).colour in COLOURS
    again_codes, again = render_keyframe_pairs(processor, model, 6, seed=4)
    assert torch.equal(again, targets) and all(torch.equal(a, b) for a, b in zip(again_codes, codes))


def test_foreground_mask_and_weighted_reconstruction_loss():
    from video_lavit.mini.detokenizers import AutoencoderTraining, foreground_mask, to_unit_range

    spec = SceneSpec(colour="red", shape="square", direction="left", x0=0.5, y0=0.5, size=0.3, speed=0.1, fps=6.0,
                     width=64, height=64, background=20)
    frame = torch.from_numpy(render_frames(spec, [0.0])[0])
    pixels = to_unit_range(frame[None])
    mask = foreground_mask(pixels)[0, 0]
    shape = torch.from_numpy((np.abs(frame.numpy().astype(int) - 20).max(-1) > 25))
    assert mask.shape == (64, 64) and torch.equal(mask.bool(), shape)
    assert 0.05 < float(mask.mean()) < 0.15

    class Offset(torch.nn.Module):
        """A VAE stand-in whose reconstruction is the input plus a fixed error image."""

        def __init__(self, error):
            super().__init__()
            self.error = error

        def encode(self, x):
            posterior = type("Posterior", (), {"sample": lambda _: x, "kl": lambda _: torch.zeros(len(x))})()
            return type("Out", (), {"latent_dist": posterior})

        def decode(self, z):
            return type("Out", (), {"sample": z + self.error})

    error_on_shape = 0.5 * mask.expand(1, 3, -1, -1)
    background = (1 - mask).bool()
    error_on_background = torch.zeros(1, 3, 64, 64)
    # the same number of wrong pixels, in the background instead of on the shape
    count = int(mask.sum())
    rows, cols = torch.nonzero(background, as_tuple=True)
    error_on_background[:, :, rows[:count], cols[:count]] = 0.5
    shape_loss = AutoencoderTraining(Offset(error_on_shape))(frame[None])["loss"]
    background_loss = AutoencoderTraining(Offset(error_on_background))(frame[None])["loss"]
    assert float(shape_loss) > 5 * float(background_loss)
    plain = AutoencoderTraining(Offset(error_on_shape), foreground_weight=0.0)(frame[None])["loss"]
    plain_background = AutoencoderTraining(Offset(error_on_background), foreground_weight=0.0)(frame[None])["loss"]
    assert float(plain) == pytest.approx(float(plain_background), rel=1e-3)


def test_keyframe_diffusion_loss_targets_the_schedulers_prediction_type():
    from diffusers import DDIMScheduler

    from video_lavit.mini.detokenizers import KeyframeDiffusionTraining
    from video_lavit.modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoderOutput

    class Decoder(torch.nn.Module):
        def forward(self, codes):
            return VideoLavitKeyframeDecoderOutput(torch.ones(len(codes), 4, 8), torch.ones(len(codes), 8))

    class Oracle(torch.nn.Module):
        """Returns the exact target of `kind`, recovered from the noisy input it is given."""

        config = SimpleNamespace(in_channels=4)

        def __init__(self, alphas_cumprod, latents, kind):
            super().__init__()
            self.alphas_cumprod, self.latents, self.kind = alphas_cumprod, latents, kind

        def forward(self, noisy, t, **kwargs):
            a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
            noise = (noisy - a.sqrt() * self.latents) / (1 - a).sqrt()
            target = noise if self.kind == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * self.latents
            return type("Out", (), {"sample": target})

    latents = torch.randn(3, 4, 8, 8)
    codes = torch.zeros(3, 16, dtype=torch.long)
    losses = {}
    for prediction_type in ("epsilon", "v_prediction"):
        scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                  prediction_type=prediction_type)
        for kind in ("epsilon", "v_prediction"):
            module = KeyframeDiffusionTraining(Decoder(), Oracle(scheduler.alphas_cumprod, latents, kind), scheduler)
            torch.manual_seed(0)
            losses[prediction_type, kind] = float(module(latents, codes)["loss"])
    assert losses["epsilon", "epsilon"] < 1e-8 and losses["v_prediction", "v_prediction"] < 1e-8
    assert losses["epsilon", "v_prediction"] > 0.1 and losses["v_prediction", "epsilon"] > 0.1
    with pytest.raises(ValueError, match="prediction_type"):
        KeyframeDiffusionTraining(Decoder(), Oracle(None, None, None), DDIMScheduler(prediction_type="sample"))


def test_keyframe_diffusion_feeds_the_code_map_and_drops_it_with_the_other_conditions():
    from diffusers import DDIMScheduler

    from video_lavit.mini import detokenizers
    from video_lavit.modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder

    decoder = VideoLavitKeyframeDecoder(
        codebook_size=10, code_dim=3, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
        num_queries=4, feature_dim=8, prompt_embed_dims=(4, 4), pooled_embed_dim=4, pooler_num_heads=2,
    )
    seen = {}

    class Recorder(torch.nn.Module):
        config = SimpleNamespace(in_channels=4 + 3)

        def forward(self, noisy, t, encoder_hidden_states, **kwargs):
            seen.update(noisy=noisy, prompt=encoder_hidden_states)
            return SimpleNamespace(sample=noisy[:, :4])

    scheduler = DDIMScheduler(prediction_type="v_prediction")
    module = detokenizers.KeyframeDiffusionTraining(decoder, Recorder(), scheduler)
    codes = torch.tensor([[1, 2, 3, 4]] * 64)
    torch.manual_seed(0)
    module(torch.randn(64, 4, 6, 6), codes)
    expected = decoder.spatial_code_map(codes[:1], (6, 6))[0]
    kept = seen["prompt"].flatten(1).abs().sum(1) > 0
    assert 0 < int((~kept).sum()) < 20  # CONDITION_DROPOUT = 0.1 of 64
    for i in range(64):
        torch.testing.assert_close(seen["noisy"][i, 4:], expected if kept[i] else torch.zeros_like(expected))


def test_latent_foreground_weights_and_weighted_video_diffusion_loss():
    from video_lavit.mini.detokenizers import VideoDiffusionTraining, latent_foreground_weights

    # a 16-px square on an 8x8 latent grid of a 64-px frame: four whole cells of the shape, weight 1 + 10
    frames = torch.full((2, 64, 64, 3), 20, dtype=torch.uint8)
    frames[0, 8:24, 8:24] = torch.tensor(COLOURS["red"], dtype=torch.uint8)
    weights = latent_foreground_weights(frames, (8, 8))
    assert weights.shape == (2, 1, 8, 8)
    expected = torch.ones(8, 8)
    expected[1:3, 1:3] = 11.0
    torch.testing.assert_close(weights[0, 0], expected)
    torch.testing.assert_close(weights[1, 0], torch.ones(8, 8))  # no shape: plain loss
    # half a cell covered: half the extra weight
    frames[1, 0:4, 0:8] = 230
    assert float(latent_foreground_weights(frames[1:], (8, 8))[0, 0, 0, 0]) == pytest.approx(6.0)

    class Encoder(torch.nn.Module):
        def forward(self, motion):
            return SimpleNamespace(motion_hidden_states=torch.zeros(len(motion), 1, 1, 1))

    class Oracle(torch.nn.Module):
        """Predicts the v that makes the denoised latents exactly `latents + error`."""

        def __init__(self, latents, error):
            super().__init__()
            self.latents, self.error = latents, error

        def forward(self, unet_input, timestep, **kwargs):
            sigma = torch.exp(4 * timestep).view(-1, 1, 1, 1, 1)
            c_in = 1 / (sigma**2 + 1).sqrt()
            noisy = unet_input[:, :, :4] / c_in
            v = (self.latents + self.error - noisy / (sigma**2 + 1)) / (-sigma * c_in)
            return SimpleNamespace(sample=v)

    latents = torch.randn(1, 3, 4, 8, 8)
    keyframe, motion = torch.randn(1, 4, 8, 8), torch.zeros(1, 2, 3, 8, 8)
    latent_weights = weights[:1, None].expand(1, 3, 1, 8, 8)
    on_shape, on_background = torch.zeros_like(latents), torch.zeros_like(latents)
    on_shape[..., 1:3, 1:3] = 0.5
    on_background[..., 5:7, 5:7] = 0.5  # the same number of wrong cells, away from the shape

    def loss(error, weighted):
        torch.manual_seed(0)  # the same sigma for every call
        module = VideoDiffusionTraining(Oracle(latents, error), Encoder())
        return float(module(latents, keyframe, motion, latent_weights if weighted else None)["loss"])

    assert loss(torch.zeros_like(latents), True) < 1e-8
    assert loss(on_shape, True) > 5 * loss(on_background, True)
    assert loss(on_shape, False) == pytest.approx(loss(on_background, False), rel=1e-4)


def test_text_to_video_pairs_keep_single_clips_from_frame_zero(tmp_path, monkeypatch):
    from video_lavit.mini.modeling import build_processor
    from video_lavit.mini.train import TEXT_TO_VIDEO_DATA_SEED, prepare_text_to_video_data

    processor = build_processor()
    data = prepare_text_to_video_data(processor, tmp_path, 6)
    rows = build_dataset(6, seed=TEXT_TO_VIDEO_DATA_SEED, codec="libx264")
    kept = []
    for row in rows:
        out = processor.video_processor([row["video"]], return_tensors="pt")
        if len(out["motion_vectors"]) == 1 and int(out["keyframe_indices"][0]) == 0:
            kept.append((row["caption"], out))
    assert 0 < len(kept) == len(data["caption_ids"])
    assert data["pixel_values"].shape == (len(kept), 3, 32, 32)
    assert data["motion_vectors"].shape == (len(kept), 2, 24, 8, 8)
    for i, (caption, out) in enumerate(kept):
        assert processor.tokenizer.decode(data["caption_ids"][i]) == caption
        torch.testing.assert_close(data["motion_vectors"][i], out["motion_vectors"][0])
        torch.testing.assert_close(data["pixel_values"][i], out["pixel_values"][0])
    # cached: a second call reads the file instead of rendering again
    from video_lavit.mini import train

    monkeypatch.setattr(train, "build_dataset", lambda *a, **k: pytest.fail("rendered again"))
    again = prepare_text_to_video_data(processor, tmp_path, 6)
    torch.testing.assert_close(again["motion_vectors"], data["motion_vectors"])


@pytest.fixture(scope="module")
def understanding():
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(MODEL).eval()
    processor = AutoProcessor.from_pretrained(MODEL)
    return model, processor


@requires_model
def test_shipped_model_answers_about_a_fresh_video(understanding):
    model, processor = understanding
    rng = np.random.default_rng(2026)
    # renderer settings never trained on: codecs (MPEG-2, VP9), frame rates and sizes
    cases = [
        ("red", "circle", "right", "mpeg2video", 15.0, (112, 80)),
        ("blue", "square", "up", "libvpx-vp9", 24.0, (48, 48)),
        ("yellow", "triangle", "left", "libvpx-vp9", 5.0, (128, 128)),
        ("white", "square", "down", "mpeg2video", 24.0, (120, 96)),
    ]
    videos = [encode_scene(random_scene(rng, colour, shape, direction, fps_choices=(fps,), size_choices=(size,)),
                           codec=codec) for colour, shape, direction, codec, fps, size in cases]
    questions = ["Describe this video.", "Which way does the shape move?",
                 "What is moving in this video, and where does it go?", "What colour is the shape, and where does it go?"]
    inputs = processor(text=[understanding_prompt(q) for q in questions], videos=videos, return_tensors="pt")
    inputs = {k: v for k, v in inputs.items() if k not in ("keyframe_indices", "keyframe_timestamps")}
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False, tokenizer=processor.tokenizer)
    answers = processor.decode_answers(out, prompt_length=inputs["input_ids"].shape[1])
    right_direction = 0
    for (colour, shape, direction, *_), answer in zip(cases, answers):
        # the trained answer form, naming the right colour and shape (and no other colour) and a direction
        words = _words(answer)
        assert words[-4:-1] == [colour, shape, "moves"] and words[-1] in DIRECTIONS, answers
        assert sum(c in words for c in COLOURS) == 1, answers
        right_direction += words[-1] == direction
    # direction is right for ~97 % of such videos in the evaluation (README); one miss in four is allowed
    assert right_direction >= 3, answers


@requires_model
def test_shipped_pipeline_generates_a_moving_blob():
    from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {**GENERATION_KWARGS, "keyframe_num_inference_steps": 10, "num_inference_steps": 8}
    out = pipe("a red square moves right", generator=torch.Generator().manual_seed(0), output_type="np", **kwargs)
    frames = out.frames[0]
    assert frames.shape == (24, 64, 64, 3)
    assert len(out.keyframe_token_ids[0][0]) == 16 and out.motion_token_ids.shape == (1, 1, 12)
    reading = read_blob(frames)
    # a blob on a uniform background that the judge can follow across the clip
    assert reading.colour is not None and reading.direction is not None


@requires_model
def test_shipped_pipeline_generates_the_prompted_colour():
    # the colour is right for 87.5 % of evaluation prompts (README); this prompt and seed are one of the hits
    from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {**GENERATION_KWARGS, "keyframe_num_inference_steps": 10, "num_inference_steps": 8}
    out = pipe("a red square moves right", generator=torch.Generator().manual_seed(0), output_type="np", **kwargs)
    assert read_blob(out.frames[0]).colour == "red"


@requires_model
def test_shipped_pipeline_samples_a_whole_code_grid_under_llm_guidance():
    # under the original's LLM guidance the LLM now and then samples ids that are deleted afterwards (eos, a second
    # [IMG]): this prompt and seed leave 12 keyframe codes (the prompt loses some for most seeds). The keyframe UNet
    # reads the codes on the 4x4 patch grid and needs all 16, so the pipeline restricts the LLM to codes.
    from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    prompt, seed = "a green square moves down", 1
    token_kwargs = dict(
        guidance_scale_image=GENERATION_KWARGS["llm_guidance_scale"],
        guidance_scale_motion=GENERATION_KWARGS["motion_guidance_scale"], top_k=GENERATION_KWARGS["top_k"],
        max_new_tokens=GENERATION_KWARGS["max_new_tokens"], min_new_tokens=GENERATION_KWARGS["min_new_tokens"],
        show_progress=False,
    )
    ids = pipe.encode_prompt([prompt])
    unrestricted = pipe.language_model.generate_video_tokens(
        input_ids=ids, generator=torch.Generator().manual_seed(seed), **token_kwargs
    )
    assert unrestricted.keyframe_codes[0][0].numel() < 16
    kwargs = {**GENERATION_KWARGS, "keyframe_num_inference_steps": 10, "num_inference_steps": 8}
    out = pipe(prompt, generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs)
    assert len(out.keyframe_token_ids[0][0]) == 16 and out.frames[0].shape == (24, 64, 64, 3)
    assert out.motion_token_ids.shape == (1, 1, 12)
    # fewer keyframe tokens than the grid holds: refused before any diffusion, saying what to set
    short = {**kwargs, "max_new_tokens": (8, 12), "min_new_tokens": (8, 12)}
    with pytest.raises(ValueError, match="needs exactly 16"):
        pipe(prompt, generator=torch.Generator().manual_seed(seed), output_type="np", **short)


@requires_model
def test_generate_command_draws_a_travelling_red_blob(tmp_path):
    # the example, as the README runs it: `video-lavit generate --prompt "a red circle moves left"` with the
    # shipped model and the default seed
    from video_lavit.cli import main

    out = tmp_path / "x.mp4"
    assert main(["generate", "--prompt", "a red circle moves left", "--out", str(out)]) == 0
    with av.open(str(out)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (24, 64, 64, 3)
    reading = read_blob(frames)
    assert reading.colour == "red" and reading.direction == "left"
    assert reading.displacement[0] < -10  # it travels, it does not just jitter


@requires_model
def test_shipped_pipeline_moves_the_red_circle_left_for_most_seeds():
    # the prompt over the seeds 0-5: 5 of the 6 clips move left (seed 4 goes down); direction is right for
    # 80 % of evaluation prompts (README), so one prompt's seeds are a coarse check that a retrained model keeps it
    from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    readings = [
        read_blob(pipe("a red circle moves left", generator=torch.Generator().manual_seed(seed), output_type="np",
                       **GENERATION_KWARGS).frames[0])
        for seed in range(6)
    ]
    assert all(r.colour == "red" for r in readings), [r.description for r in readings]
    assert sum(r.direction == "left" for r in readings) >= 4, [r.description for r in readings]


@requires_model
def test_shipped_folder_is_small_and_safetensors():
    files = [p for p in MODEL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth")]
    assert (MODEL / "model.safetensors").is_file() and (MODEL / "language_model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_training_command_runs_end_to_end(tmp_path):
    from video_lavit.mini import train

    log = train.main(["--out", str(tmp_path), "--scale", "0.01", "--videos", "8", "--text-to-video-videos", "8"])
    assert (tmp_path / "model" / "model_index.json").is_file()
    assert set(log["times"]) >= {"data", "visual_encoder", "motion_tokenizer", "visual_quantizer",
                                 "text_to_video_data", "language_model",
                                 "keyframe_detokenizer", "video_detokenizer", "save"}
    # the video detokenizer trained in the second process (the default --jobs 2) and its losses came back
    assert (tmp_path / "train_log.video.json").is_file() and log["video_unet"] and log["video_vae"]
    assert 0 < log["wall_seconds"] and (tmp_path / "stages" / "video_trained" / "video_unet").is_dir()
