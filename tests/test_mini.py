"""The miniature Video-LaVIT: synthetic data, metric scripts, pixel judge, and the shipped trained model."""

from __future__ import annotations

import io
from pathlib import Path

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
    # a renderer setting never trained on (mpeg4, 15 fps, 112 x 80)
    cases = [("red", "circle", "right"), ("blue", "square", "up"), ("yellow", "triangle", "left")]
    videos = [encode_scene(random_scene(rng, *c, fps_choices=(15.0,), size_choices=((112, 80),)), codec="mpeg4")
              for c in cases]
    questions = ["Describe this video.", "Which way does the shape move?", "What is moving in this video, and where does it go?"]
    inputs = processor(text=[understanding_prompt(q) for q in questions], videos=videos, return_tensors="pt")
    inputs = {k: v for k, v in inputs.items() if k not in ("keyframe_indices", "keyframe_timestamps")}
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False, tokenizer=processor.tokenizer)
    answers = processor.decode_answers(out, prompt_length=inputs["input_ids"].shape[1])
    for (colour, _, _), answer in zip(cases, answers):
        words = _words(answer)
        # an answer in the trained form, naming the right colour (and no other)
        assert words[-2] == "moves" and words[-1] in DIRECTIONS, answer
        assert colour in words and sum(c in words for c in COLOURS) == 1, answers


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
@pytest.mark.xfail(strict=True, reason="known shortfall: the shipped miniature's generated blob does not keep the "
                   "prompted colour (see the README's miniature section)")
def test_shipped_pipeline_generates_the_prompted_colour():
    from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {**GENERATION_KWARGS, "keyframe_num_inference_steps": 10, "num_inference_steps": 8}
    out = pipe("a red square moves right", generator=torch.Generator().manual_seed(0), output_type="np", **kwargs)
    assert read_blob(out.frames[0]).colour == "red"


@requires_model
def test_shipped_folder_is_small_and_safetensors():
    files = [p for p in MODEL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth")]
    assert (MODEL / "model.safetensors").is_file() and (MODEL / "language_model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_training_command_runs_end_to_end(tmp_path):
    from video_lavit.mini import train

    log = train.main(["--out", str(tmp_path), "--scale", "0.01", "--videos", "8"])
    assert (tmp_path / "model" / "model_index.json").is_file()
    assert set(log["times"]) >= {"data", "visual_encoder", "motion_tokenizer", "visual_quantizer", "language_model",
                                 "keyframe_detokenizer", "video_detokenizer", "save"}
