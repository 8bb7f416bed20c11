"""transformers.pipeline("text-to-video") and pipeline("video-text-to-text") on the miniature Video-LaVIT."""

import json

import av
import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import video_lavit
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from video_lavit.pipelines import VideoLavitPipeline
from video_lavit.pipelines.pipeline_text_to_video import VideoLavitTextToVideoPipeline
from video_lavit.pipelines.pipeline_video_text_to_text import VideoLavitVideoTextToTextPipeline
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.testing import build_tiny_converted_video_lavit, build_tiny_language_model

# small enough for a CPU test: one denoising step per detokenizer, short LLM stages (a clip needs 135 motion ids)
FAST = dict(num_inference_steps=1, keyframe_num_inference_steps=1, max_new_tokens=(8, 136), min_new_tokens=(1, 1))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The converted-release layout: a generation pipeline folder plus a different understanding model at the root."""
    return build_tiny_converted_video_lavit(tmp_path_factory.mktemp("converted") / "tiny", seed=0)


@pytest.fixture(scope="module")
def generation_only(converted, tmp_path_factory):
    """A plain VideoLavitPipeline folder (no root model), as `VideoLavitPipeline.save_pretrained` writes it."""
    folder = tmp_path_factory.mktemp("generation") / "tiny"
    VideoLavitPipeline.from_pretrained(converted).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def text_to_video(converted):
    return pipeline("text-to-video", model=str(converted), device="cpu")


@pytest.fixture(scope="module")
def video_qa(converted):
    return pipeline("video-text-to-text", model=str(converted), device="cpu")


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _read_video(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_tasks_registered_once_at_import():
    tasks = PIPELINE_REGISTRY.supported_tasks
    assert tasks["text-to-video"]["impl"] is VideoLavitTextToVideoPipeline
    assert tasks["video-text-to-text"]["impl"] is VideoLavitVideoTextToTextPipeline
    video_lavit.register_all()  # idempotent: the registered classes stay the same objects
    assert PIPELINE_REGISTRY.supported_tasks["text-to-video"]["impl"] is VideoLavitTextToVideoPipeline


def test_text_to_video_matches_the_diffusers_pipeline(converted, text_to_video, tmp_path):
    pipe = text_to_video
    assert isinstance(pipe, VideoLavitTextToVideoPipeline)
    # the generation LLM of language_model/, not the root understanding model, drives the video pipeline
    assert pipe.model is pipe.video_pipeline.language_model
    generation_llm = VideoLavitForConditionalGeneration.from_pretrained(converted / "language_model")
    assert _same_weights(pipe.model, generation_llm)
    assert not _same_weights(pipe.model, VideoLavitForConditionalGeneration.from_pretrained(converted))

    out = pipe("a dog running", generator=torch.Generator().manual_seed(3), output_path=tmp_path / "dog.mp4", fps=8, **FAST)
    reference = pipe.video_pipeline(
        "a dog running", generator=torch.Generator().manual_seed(3), output_type="np", **FAST
    )
    assert out["frames"].shape == (24, 64, 64, 3)
    np.testing.assert_allclose(out["frames"], reference.frames[0], atol=1e-4)
    assert torch.equal(out["motion_token_ids"], reference.motion_token_ids[0])
    assert out["motion_token_ids"].shape == (1, 135)
    assert out["keyframes"].shape == (1, 64, 128, 3)
    written = _read_video(out["video_path"])
    assert len(written) == 24 and written[0].shape == (64, 64, 3)
    # lossy H.264, but the content is the generated video
    assert np.abs(np.stack(written).astype(float) / 255 - out["frames"]).mean() < 0.05


def test_image_to_video_from_a_dict_input(text_to_video, testdata_dir, tmp_path):
    pipe = text_to_video
    image_path = testdata_dir / "dog.jpg"
    out = pipe({"image": str(image_path), "prompt": "it runs"}, generator=torch.Generator().manual_seed(0),
               output_type="pil", output_path=tmp_path / "dog.gif", **FAST)
    assert len(out["frames"]) == 24 and out["frames"][0].size == (64, 64)
    # image-to-video: clip 0's keyframe is the given image itself at the keyframe size
    expected = PIL.Image.open(image_path).convert("RGB").resize((128, 64), PIL.Image.BICUBIC)
    assert np.abs(np.asarray(out["keyframes"][0], dtype=float) - np.asarray(expected, dtype=float)).max() <= 1
    with PIL.Image.open(out["video_path"]) as gif:
        assert gif.n_frames == 24


def test_text_to_video_bad_inputs(text_to_video, generation_only):
    pipe = text_to_video
    with pytest.raises(TypeError, match="num_step"):
        pipe("a dog", num_steps=3)
    with pytest.raises(ValueError, match="output_path must end in"):
        pipe("a dog", output_path="dog.avi")
    with pytest.raises(ValueError, match="'prompt' and/or 'image'"):
        pipe({"text": "a dog"})
    with pytest.raises(TypeError, match="prompt string, a PIL image"):
        pipe(3)
    # a generation-only folder has no root config.json: point the config at its LLM
    pipe = pipeline("text-to-video", model=str(generation_only), model_kwargs={"subfolder": "language_model"}, device="cpu")
    assert isinstance(pipe.video_pipeline, VideoLavitPipeline)
    with pytest.raises(ValueError, match="model_index.json"):  # a model object without a pipeline folder
        VideoLavitTextToVideoPipeline(model=build_tiny_language_model(len(pipe.processor.tokenizer)))


def _direct_answer(model, processor, question, max_new_tokens, **media):
    kind = "video" if "videos" in media else "image"
    chat = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(chat, add_generation_prompt=True)
    inputs = processor(text=prompt, return_tensors="pt", **media)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, tokenizer=processor.tokenizer)
    return processor.decode_answers(out, prompt_length=inputs["input_ids"].shape[1])[0]


def test_video_text_to_text_answers_like_generate(converted, video_qa, testdata_dir):
    qa = video_qa
    assert isinstance(qa, VideoLavitVideoTextToTextPipeline)
    root_model = VideoLavitForConditionalGeneration.from_pretrained(converted).eval()
    assert _same_weights(qa.model, root_model)  # the understanding model of the root
    processor = VideoLavitProcessor.from_pretrained(converted)
    video = str(testdata_dir / "video7013.mp4")

    answer = qa(video, question="What is happening?", max_new_tokens=6, max_clips=2)
    expected = _direct_answer(root_model, processor, "What is happening?", 6, videos=[video], max_clips=2)
    assert answer == {"generated_text": expected} and expected

    image = PIL.Image.open(testdata_dir / "dog.jpg")
    answer = qa({"image": str(testdata_dir / "dog.jpg"), "text": "What animal?"}, max_new_tokens=5, return_full_text=True)
    assert answer["generated_text"] == _direct_answer(root_model, processor, "What animal?", 5, images=[image])
    assert answer["full_text"].endswith("What animal? ASSISTANT:" + answer["full_text"].split("ASSISTANT:")[-1])
    assert qa(image, question="What animal?", max_new_tokens=5)["generated_text"] == answer["generated_text"]
    # a list of inputs gives one answer each
    both = qa([image, {"image": image, "question": "What animal?"}], question="What animal?", max_new_tokens=5)
    assert both == [{"generated_text": answer["generated_text"]}] * 2


def test_video_text_to_text_bad_inputs(video_qa, testdata_dir):
    qa = video_qa
    video = str(testdata_dir / "video7013.mp4")
    with pytest.raises(ValueError, match="non-empty `question`"):
        qa(video)
    with pytest.raises(ValueError, match="must not contain '<video>'"):
        qa(video, question="<video> what?")
    with pytest.raises(ValueError, match="exactly one of 'video' / 'image'"):
        qa({"video": video, "image": str(testdata_dir / "dog.jpg"), "question": "what?"})
    with pytest.raises(ValueError, match="apply to videos"):
        qa(str(testdata_dir / "dog.jpg"), question="what?", max_clips=2)
    with pytest.raises(TypeError, match="unexpected arguments"):
        qa(video, question="what?", temperature=0.5)


def test_save_pretrained_writes_no_custom_pipelines(converted, generation_only, tmp_path, testdata_dir):
    # a generation-only folder answers with its generation LLM and the processor of processor/
    qa = pipeline("video-text-to-text", model=str(generation_only), model_kwargs={"subfolder": "language_model"},
                  device="cpu")
    image = str(testdata_dir / "dog.jpg")
    answer = qa(image, question="What?", max_new_tokens=4)
    qa.save_pretrained(tmp_path / "qa")
    config = json.loads((tmp_path / "qa" / "config.json").read_text())
    assert "custom_pipelines" not in config
    reloaded = pipeline("video-text-to-text", model=str(tmp_path / "qa"), device="cpu")
    assert reloaded(image, question="What?", max_new_tokens=4) == answer
