"""The model subcommands of the `video-lavit` console command, run in-process on the miniature model."""

import functools
import json

import av
import numpy as np
import PIL.Image
import pytest
import torch
import video_lavit
from video_lavit.cli import build_parser, main
from video_lavit.media_output import contact_sheet, write_video
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from video_lavit.pipelines import VideoLavitPipeline
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.testing import build_tiny_video_lavit

# one denoising step per detokenizer and short LLM stages keep a CPU run at seconds
FAST = ["--steps", "1", "--max-keyframe-tokens", "8", "--max-motion-tokens", "136", "--device", "cpu"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_video_lavit(tmp_path_factory.mktemp("cli") / "tiny")


@pytest.fixture(scope="module")
def video(testdata_dir):
    return str(testdata_dir / "video7013.mp4")


def _frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_generate_long_video_and_contact_sheet(model_dir, tmp_path, monkeypatch, capsys):
    calls = []
    original_call = VideoLavitPipeline.__call__

    @functools.wraps(original_call)  # keeps the signature the CLI reads the pipeline's defaults from
    def spy(self, *args, **kwargs):
        calls.append(dict(kwargs, seed=kwargs["generator"].initial_seed()))
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(VideoLavitPipeline, "__call__", spy)
    out = tmp_path / "waves.png"  # animated PNG: lossless, so the frames are checked exactly below
    argv = ["generate", "--model", str(model_dir), "--prompt", "waves", "--clips", "2", "--out", str(out),
            "--seed", "5", *FAST]
    assert main(argv) == 0
    (call,) = calls
    assert (call["prompt"], call["num_clips"], call["seed"]) == ("waves", 2, 5)
    assert (call["num_inference_steps"], call["keyframe_num_inference_steps"]) == (1, 1)
    assert (call["max_new_tokens"], call["min_new_tokens"]) == ((8, 136), (8, 20))
    with PIL.Image.open(out) as png:
        assert png.n_frames == 24 + 23 and png.size == (64, 64)  # the second clip drops its first frame
    with PIL.Image.open(tmp_path / "waves_sheet.png") as sheet:
        assert sheet.size == (7 * 64, 2 * (64 + 12))  # per clip: keyframe + 6 frames
    assert "47 frames (2 clips, 64x64)" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png"])
def test_write_video_by_extension(tmp_path, suffix):
    frames = np.random.default_rng(0).random((5, 16, 24, 3)).astype(np.float32)
    path = write_video(frames, tmp_path / f"v{suffix}", fps=4)
    if suffix == ".mp4":
        decoded = _frames(path)
        assert len(decoded) == 5 and decoded[0].shape == (16, 24, 3)
    else:
        with PIL.Image.open(path) as image:
            assert image.n_frames == 5 and image.size == (24, 16)
            if suffix == ".png":  # lossless
                image.seek(3)
                np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.round(frames[3] * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="--out must end in"):
        write_video(frames, tmp_path / "v.avi")


def test_understand_prints_the_models_answer(model_dir, video, testdata_dir, capsys):
    argv = ["understand", "--model", str(model_dir), "--video", video, "--question", "What is happening?",
            "--max-new-tokens", "6", "--max-clips", "2", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]

    model = VideoLavitForConditionalGeneration.from_pretrained(model_dir / "language_model").eval()
    processor = VideoLavitProcessor.from_pretrained(model_dir / "processor")
    chat = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is happening?"}]}]
    inputs = processor(text=processor.apply_chat_template(chat, add_generation_prompt=True), videos=[video],
                       max_clips=2, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=6, tokenizer=processor.tokenizer)
    expected = processor.decode_answers(out, prompt_length=inputs["input_ids"].shape[1])[0]
    assert printed == expected and expected

    image = str(testdata_dir / "dog.jpg")
    assert main(["understand", "--model", str(model_dir), "--image", image, "--question", "What?",
                 "--max-new-tokens", "4", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip()


def test_tokenize_json_has_135_motion_ids_per_clip(model_dir, video, tmp_path, capsys):
    out = tmp_path / "tokens.json"  # stdout (the default) is exercised by test_default_model_and_errors
    argv = ["tokenize", "--model", str(model_dir), "--video", video, "--max-clips", "2", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == f"2 clips -> {out}"
    result = json.loads(out.read_text())
    assert result["num_clips"] == 2 and len(result["clips"]) == 2
    model = VideoLavitForConditionalGeneration.from_pretrained(model_dir / "language_model").eval()
    layout = model.token_layout
    motion = VideoLavitProcessor.from_pretrained(model_dir / "processor").video_processor(
        [video], max_clips=2, return_tensors="pt"
    )
    expected_motion = model.motion_tokenizer.encode(motion["motion_vectors"])
    # the keyframe token selection is random; --seed (default 0) fixes it
    expected_keyframes = model.visual_tokenizer.tokenize(
        motion["pixel_values"], generator=torch.Generator().manual_seed(0)
    ).token_ids
    for clip, expected, keyframe in zip(result["clips"], expected_motion, expected_keyframes):
        assert len(clip["motion_ids"]) == 135 and clip["motion_ids"] == expected.tolist()
        assert clip["keyframe_ids"] == keyframe.tolist()
        assert clip["keyframe_ids"] and all(0 <= c < result["visual_codebook_size"] for c in clip["keyframe_ids"])
        k = len(clip["keyframe_ids"])
        ids = clip["llm_ids"]
        assert len(ids) == k + 2 + 135 + 2
        assert ids[0] == layout.image_start_token_id and ids[k + 1] == layout.image_end_token_id
        assert ids[k + 2] == layout.motion_start_token_id and ids[-1] == layout.motion_end_token_id
        assert ids[k + 3:-1] == [m + layout.motion_token_offset for m in clip["motion_ids"]]
    assert [c["keyframe_index"] for c in result["clips"]] == motion["keyframe_indices"].tolist()


@pytest.mark.parametrize("keyframe", ["tokens", "original"])
def test_reconstruct_writes_one_clip_per_keyframe(model_dir, video, tmp_path, keyframe, capsys):
    out = tmp_path / "rec.gif"
    argv = ["reconstruct", "--model", str(model_dir), "--video", video, "--max-clips", "1", "--out", str(out),
            "--steps", "1", "--keyframe", keyframe, "--device", "cpu"]
    assert main(argv) == 0
    with PIL.Image.open(out) as gif:
        assert gif.n_frames == 24 and gif.size == (64, 64)
    # the keyframe column: redrawn at the keyframe detokenizer's 64 x 128, or the source keyframe (scaled to the cell)
    with PIL.Image.open(tmp_path / "rec_sheet.png") as sheet:
        assert sheet.size == (7 * 64, 64 + 12)
    assert "1 clip -> 24 frames" in capsys.readouterr().out


def test_default_model_and_errors(model_dir, video, monkeypatch, capsys):
    monkeypatch.delattr(video_lavit, "MINI_MODEL_PATH", raising=False)
    assert main(["tokenize", "--video", video]) == 2
    assert "pass --model FOLDER" in capsys.readouterr().err
    monkeypatch.setattr(video_lavit, "MINI_MODEL_PATH", str(model_dir / "not_trained"), raising=False)
    assert main(["tokenize", "--video", video]) == 2
    assert "not_trained; `python -m video_lavit.mini.train` builds it" in capsys.readouterr().err
    # the packaged miniature model is the default --model
    monkeypatch.setattr(video_lavit, "MINI_MODEL_PATH", str(model_dir), raising=False)
    assert main(["tokenize", "--video", video, "--max-clips", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_clips"] == 1
    assert main(["generate", "--prompt", "x", "--out", "x.avi"]) == 2
    assert ".mp4, .gif, .png" in capsys.readouterr().err
    assert main(["tokenize", "--model", str(model_dir / "missing"), "--video", video]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["understand", "--video", str(model_dir / "none.mp4"), "--question", "what?"]) == 2
    assert "--video" in capsys.readouterr().err
    assert main(["generate", "--prompt", "x", "--image", "none.png", "--out", "x.mp4"]) == 2
    assert "--image 'none.png' is not a file" in capsys.readouterr().err
    assert main(["generate", "--prompt", "x", "--clips", "99", "--out", "x.mp4"]) == 2
    assert "num_clips must be an int in [1, 4]" in capsys.readouterr().err


def test_every_subcommand_is_registered(capsys):
    parser = build_parser()
    for command in ("decompose", "demo", "convert", "generate", "understand", "reconstruct", "tokenize",
                    "export-for-hub"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
    assert "--original" in capsys.readouterr().out  # convert delegates to the whole-checkpoint converter


def test_contact_sheet_checks_clip_starts():
    frames = np.zeros((10, 8, 8, 3), dtype=np.uint8)
    assert contact_sheet(frames, [0, 5], columns=3).size == (3 * 8, 2 * (8 + 12))
    with pytest.raises(ValueError, match="clip_starts"):
        contact_sheet(frames, [1, 5])
    with pytest.raises(ValueError, match="keyframes for 2 clips"):
        contact_sheet(frames, [0, 5], keyframes=frames[:1])
