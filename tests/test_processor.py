"""Tests of VideoLavitProcessor (text + images + videos), its chat template and the tiny Llama tokenizer."""

import json

import numpy as np
import pytest
import torch
from jinja2.exceptions import TemplateError
from PIL import Image
from transformers import AutoProcessor, LlamaTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit.processing.chat_template import ANSWER_STOP_STRING, DEFAULT_SYSTEM_PROMPT
from video_lavit.processing.image_processing_video_lavit import VideoLavitImageProcessor
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.processing.tokenizer_utils import build_tiny_llama_tokenizer
from video_lavit.processing.video_processing_video_lavit import VideoLavitVideoProcessor


class _ClipCountingVideoProcessor(VideoProcessorMixin):
    """Stand-in video processor for ordering tests: a "video" is a 4-D array holding its number of clips n; keyframe
    row k of the whole batch is filled with 1000 + k and motion row k with k, so rows can be traced."""

    model_input_names = ["pixel_values", "motion_vectors", "clips_per_video"]

    def __call__(self, videos, return_tensors=None, **kwargs):
        clips = [int(np.asarray(v).reshape(-1)[0]) for v in videos]
        total = sum(clips)
        rows = torch.arange(total, dtype=torch.float32)
        return BatchFeature(
            {
                "pixel_values": (rows + 1000).view(total, 1, 1, 1).expand(total, 3, 224, 224).clone(),
                "motion_vectors": rows.view(total, 1, 1, 1, 1).expand(total, 2, 24, 20, 36).clone(),
                "clips_per_video": torch.tensor(clips),
            }
        )


def _video_item(n_clips):
    # a 4-D array is what the processor counts as one video
    return np.full((1, 1, 1, 1), n_clips, dtype=np.int64)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_llama_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return VideoLavitProcessor(tokenizer=tokenizer)


@pytest.fixture(scope="module")
def ordering_processor(tokenizer):
    return VideoLavitProcessor(
        image_processor=VideoLavitImageProcessor(), video_processor=_ClipCountingVideoProcessor(), tokenizer=tokenizer
    )


def _solid(value):
    return Image.fromarray(np.full((20, 30, 3), value, dtype=np.uint8))


# ---------------------------------------------------------------------------------------------- tiny tokenizer


def test_tiny_tokenizer_follows_llama_conventions(tokenizer, tmp_path):
    assert isinstance(tokenizer, LlamaTokenizer)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<unk>", "<s>", "</s>"]
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2, 0)
    assert tokenizer.convert_tokens_to_ids(["<0x00>", "<0x0A>", "<0xFF>"]) == [3, 13, 258]
    assert tokenizer.padding_side == "left" and tokenizer.model_max_length == 4096

    ids = tokenizer("What is happening in this video?").input_ids
    assert ids[0] == 1 and ids[-1] != 2  # BOS, no EOS
    assert tokenizer.convert_ids_to_tokens(ids[1:])[:5] == ["▁What", "▁is", "▁happening", "▁in", "▁this"]
    assert tokenizer("USER:", add_special_tokens=False).input_ids == tokenizer.convert_tokens_to_ids(["▁USER", ":"])

    text = "Zebras graze near Zürich 🙂\nthen\tleave."  # unknown words, non-ASCII, control characters
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text
    assert tokenizer.unk_token_id not in tokenizer(text).input_ids

    tokenizer.save_pretrained(tmp_path)
    reloaded = LlamaTokenizer.from_pretrained(tmp_path)
    assert reloaded(text).input_ids == tokenizer(text).input_ids
    assert len(reloaded) == len(tokenizer)


def test_tiny_tokenizer_options_and_errors():
    small = build_tiny_llama_tokenizer(words=["cat"], padding_side="right", pad_token="</s>")
    assert small("the cat").input_ids == [1] + small.convert_tokens_to_ids(["▁", "t", "h", "e", "▁cat"])
    assert small.padding_side == "right" and small.pad_token_id == 2
    assert len(small) < len(build_tiny_llama_tokenizer())
    with pytest.raises(ValueError, match="whitespace"):
        build_tiny_llama_tokenizer(words=["two words"])
    with pytest.raises(ValueError, match="padding_side"):
        build_tiny_llama_tokenizer(padding_side="middle")
    with pytest.raises(ValueError, match="pad_token"):
        build_tiny_llama_tokenizer(pad_token="<pad>")


# ---------------------------------------------------------------------------------------------- tokenisation


def test_placeholders_become_negative_ids_with_chunkwise_tokenisation(processor, tokenizer):
    out = processor(text="the <image> cat", images=[_solid(10)], return_tensors="pt")
    tok = tokenizer.convert_tokens_to_ids
    # each chunk is tokenised alone ("the " ends in a lone "▁"), only the first keeps BOS
    expected = [1, tok("▁the"), tok("▁"), -200, tok("▁cat")]
    assert expected == tokenizer("the ").input_ids + [-200] + tokenizer(" cat").input_ids[1:]
    assert out["input_ids"].tolist() == [expected]
    assert out["attention_mask"].tolist() == [[1] * len(expected)]
    assert out["pixel_values"].shape == (1, 3, 224, 224)

    ids = processor(text="<image>\ndog", images=[_solid(10)])["input_ids"][0]
    assert ids == [1, -200] + tokenizer("\ndog", add_special_tokens=False).input_ids
    assert ids[2:4] == [tok("▁"), 13]  # same "▁", "\n" pair Llama produces after a placeholder


def test_generation_style_prompt_has_no_bos(processor, tokenizer):
    out = processor(text="a dog running on the beach", add_special_tokens=False, return_tensors="pt")
    assert out["input_ids"].tolist() == [tokenizer("a dog running on the beach", add_special_tokens=False).input_ids]
    assert 1 not in out["input_ids"].tolist()[0]
    assert "pixel_values" not in out and "motion_vectors" not in out


def test_batch_padding_side_and_modes(processor, tokenizer):
    texts = ["a cat", "a dog running on the beach"]
    short = tokenizer(texts[0]).input_ids
    long = tokenizer(texts[1]).input_ids
    fill = len(long) - len(short)

    left = processor(text=texts, return_tensors="pt")
    assert left["input_ids"].tolist() == [[0] * fill + short, long]
    assert left["attention_mask"].tolist() == [[0] * fill + [1] * len(short), [1] * len(long)]

    right = processor(text=texts, padding_side="right", return_tensors="pt")
    assert right["input_ids"].tolist() == [short + [0] * fill, long]
    assert right["attention_mask"][0].tolist() == [1] * len(short) + [0] * fill

    padded = processor(text=texts, padding="max_length", max_length=len(long) + 3, return_tensors="pt")
    assert padded["input_ids"].shape == (2, len(long) + 3)
    multiple = processor(text=texts, pad_to_multiple_of=16, return_tensors="np")
    assert isinstance(multiple["input_ids"], np.ndarray) and multiple["input_ids"].shape == (2, 16)

    ragged = processor(text=texts, padding=False)
    assert ragged["input_ids"] == [short, long]
    with pytest.raises(ValueError, match="different lengths"):
        processor(text=texts, padding=False, return_tensors="pt")
    with pytest.raises(ValueError, match="max_length"):
        processor(text=texts, padding="max_length", max_length=2)


def test_pixel_rows_follow_placeholder_order(ordering_processor):
    images = [_solid(0), _solid(128), _solid(255)]
    texts = ["<video> first <image>", "<image> then <video> and <image>"]
    out = ordering_processor(text=texts, images=images, videos=[_video_item(2), _video_item(3)], return_tensors="pt")

    single = ordering_processor.image_processor(images, return_tensors="pt")["pixel_values"]
    rows = out["pixel_values"]
    assert rows.shape == (3 + 5, 3, 224, 224)
    # row 0: video 0 (keyframes 0, 1), then image 0, then row 1: image 1, video 1 (keyframes 2..4), image 2
    assert rows[0, 0, 0, 0] == 1000 and rows[1, 0, 0, 0] == 1001
    torch.testing.assert_close(rows[2], single[0])
    torch.testing.assert_close(rows[3], single[1])
    assert [float(rows[i, 0, 0, 0]) for i in (4, 5, 6)] == [1002.0, 1003.0, 1004.0]
    torch.testing.assert_close(rows[7], single[2])
    assert out["clips_per_video"].tolist() == [2, 3]
    assert out["motion_vectors"][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert (out["input_ids"] == -201).sum().item() == 2 and (out["input_ids"] == -200).sum().item() == 3

    # images given per row (nested lists) are the same as a flat list
    nested = ordering_processor(
        text=texts, images=[[images[0]], images[1:]], videos=[[_video_item(2)], [_video_item(3)]], return_tensors="pt"
    )
    torch.testing.assert_close(nested["pixel_values"], rows)


# ---------------------------------------------------------------------------------------------- bad input


def test_count_mismatch_and_bad_input_errors(processor, ordering_processor):
    with pytest.raises(ValueError, match=r"2 <image> placeholder\(s\) \(per row: \[1, 1\]\) but 1 image"):
        processor(text=["<image> a", "<image> b"], images=[_solid(1)])
    with pytest.raises(ValueError, match=r"0 <image> placeholder\(s\).*but 1 image"):
        processor(text="no placeholder", images=[_solid(1)])
    with pytest.raises(ValueError, match=r"1 <video> placeholder\(s\).*but 0 video"):
        processor(text="<video> a")
    with pytest.raises(ValueError, match=r"1 <video> placeholder\(s\).*but 2 video"):
        ordering_processor(text="<video> a", videos=[_video_item(1), _video_item(1)])
    with pytest.raises(TypeError, match="text must be a str"):
        processor(text=123)
    with pytest.raises(TypeError, match=r"text\[1\] must be a str"):
        processor(text=["a", None])
    with pytest.raises(ValueError, match=r"text\[0\] is an empty string"):
        processor(text="")
    with pytest.raises(ValueError, match="empty list"):
        processor(text=[])
    with pytest.raises(ValueError, match="needs text"):
        processor(images=[_solid(1)])
    with pytest.raises(TypeError, match="unexpected keyword"):
        processor(text="a", not_an_option=True)
    with pytest.raises(ValueError, match="truncation is not supported"):
        processor(text="a", truncation=True)
    with pytest.raises(TypeError, match="videos must be"):
        processor(text="<video>", videos=[3.5])
    with pytest.raises(ValueError, match="audio"):
        processor(text="a", audio=np.zeros(10))
    with pytest.raises(ValueError, match="tokenizer"):
        VideoLavitProcessor()
    with pytest.raises(ValueError, match="negative int"):
        VideoLavitProcessor(tokenizer=processor.tokenizer, image_placeholder_id=5)
    with pytest.raises(TypeError, match="VideoProcessorMixin"):
        VideoLavitProcessor(tokenizer=processor.tokenizer, video_processor=VideoLavitImageProcessor())


# ---------------------------------------------------------------------------------------------- chat template


def test_chat_template_reproduces_original_prompts(processor):
    question = "What is happening in this video?"
    video_msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    expected = DEFAULT_SYSTEM_PROMPT + " USER: <video>\n" + question + " ASSISTANT:"
    assert processor.apply_chat_template(video_msgs, add_generation_prompt=True) == expected
    assert expected == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <video>\nWhat is happening in this video? "
        "ASSISTANT:"
    )

    image_msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
    assert processor.apply_chat_template(image_msgs, add_generation_prompt=True) == (
        DEFAULT_SYSTEM_PROMPT + " USER: <image>\nDescribe the image. ASSISTANT:"
    )
    text_msgs = [{"role": "user", "content": "Hi"}]
    assert processor.apply_chat_template(text_msgs, add_generation_prompt=True) == DEFAULT_SYSTEM_PROMPT + " USER: Hi ASSISTANT:"
    assert processor.apply_chat_template(text_msgs) == DEFAULT_SYSTEM_PROMPT + " USER: Hi "

    # multi-turn: assistant turns end with " \n </s>" where \n is a literal backslash + n
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert ANSWER_STOP_STRING == "\\" + "n"
    assert processor.apply_chat_template(turns, add_generation_prompt=True) == (
        "Be brief. USER: Q1 ASSISTANT: A1 \\n </s>USER: Q2 ASSISTANT:"
    )

    with pytest.raises(TemplateError, match="alternate"):
        processor.apply_chat_template([{"role": "assistant", "content": "x"}])
    with pytest.raises(TemplateError, match="role user or assistant"):
        processor.apply_chat_template([{"role": "tool", "content": "x"}])
    with pytest.raises(TemplateError, match="image, video or text"):
        processor.apply_chat_template([{"role": "user", "content": [{"type": "audio"}]}])


def test_chat_template_tokenize_with_image_path(processor, testdata_dir):
    path = str(testdata_dir / "dog.jpg")
    msgs = [{"role": "user", "content": [{"type": "image", "path": path}, {"type": "text", "text": "What is this?"}]}]
    out = processor.apply_chat_template(
        msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True)
    direct = processor(text=prompt, images=[Image.open(path)], return_tensors="pt")
    assert out["input_ids"].tolist() == direct["input_ids"].tolist()
    assert out["input_ids"][0, 0] == 1 and (out["input_ids"] == -200).sum() == 1
    torch.testing.assert_close(out["pixel_values"], direct["pixel_values"])


# ---------------------------------------------------------------------------------------------- decoding


def test_decode_handles_placeholders_and_visual_ids(processor, tokenizer):
    vocab = len(tokenizer)
    text_ids = tokenizer("a dog", add_special_tokens=False).input_ids
    ids = torch.tensor([[1, -201] + text_ids + [vocab, vocab + 500, 2], [0, 0, 1] + text_ids + [2, 2]])
    assert processor.batch_decode(ids, skip_special_tokens=True) == ["a dog", "a dog"]
    assert processor.decode(ids[0], skip_special_tokens=True) == "a dog"
    with pytest.raises(ValueError, match=rf"ids \[-201, {vocab}, {vocab + 500}\] are not text tokens"):
        processor.decode(ids[0])
    assert processor.decode(text_ids) == "a dog"
    assert processor.post_process_image_text_to_text(ids) == ["a dog", "a dog"]
    assert processor.post_process_image_text_to_text(ids[1]) == "a dog"
    with pytest.raises(ValueError, match="1-D"):
        processor.decode(ids)

    answer = tokenizer("the dog is running \\n </s> more", add_special_tokens=False).input_ids
    generated = torch.tensor([[1, 7, 7] + answer])
    assert processor.decode_answers(generated, prompt_length=3) == ["the dog is running"]
    assert processor.decode_answers(generated, prompt_length=3, stop_string=None) == ["the dog is running \\n  more"]


# ---------------------------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(tokenizer, tmp_path):
    processor = VideoLavitProcessor(tokenizer=tokenizer, padding_side="right")
    processor.save_pretrained(tmp_path)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert {"processor_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= set(saved)
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["processor_class"] == "VideoLavitProcessor"
    assert config["image_processor"]["image_processor_type"] == "VideoLavitImageProcessor"
    assert config["video_processor"]["video_processor_type"] == "VideoLavitVideoProcessor"
    assert (config["image_placeholder_id"], config["video_placeholder_id"], config["padding_side"]) == (-200, -201, "right")

    for loaded in (VideoLavitProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is VideoLavitProcessor
        assert isinstance(loaded.video_processor, VideoLavitVideoProcessor)
        assert isinstance(loaded.image_processor, VideoLavitImageProcessor)
        assert loaded.chat_template == processor.chat_template
        assert loaded.padding_side == "right"
        texts = ["the <image> cat", "a dog running"]
        images = [_solid(3)]
        a, b = processor(text=texts, images=images, return_tensors="pt"), loaded(text=texts, images=images, return_tensors="pt")
        assert a["input_ids"].tolist() == b["input_ids"].tolist()
        torch.testing.assert_close(a["pixel_values"], b["pixel_values"])

    overridden = VideoLavitProcessor.from_pretrained(tmp_path, padding_side="left")
    assert overridden.padding_side == "left"


# ---------------------------------------------------------------------------------------------- real video


def test_real_video_through_processor_and_chat_template(processor, testdata_dir):
    path = str(testdata_dir / "video7013.mp4")
    direct = processor.video_processor(path, max_clips=2, return_tensors="pt")
    out = processor(text=["<video>\nWhat is happening?", "a cat"], videos=[path], max_clips=2, return_tensors="pt")
    n_clips = int(direct["clips_per_video"].sum())
    assert out["clips_per_video"].tolist() == direct["clips_per_video"].tolist() and 1 <= n_clips <= 2
    assert out["pixel_values"].shape == (n_clips, 3, 224, 224)
    assert out["motion_vectors"].shape == (n_clips, 2, 24, 20, 36)
    torch.testing.assert_close(out["pixel_values"], direct["pixel_values"])
    torch.testing.assert_close(out["motion_vectors"], direct["motion_vectors"])
    assert (out["input_ids"] == -201).sum().item() == 1

    msgs = [{"role": "user", "content": [{"type": "video", "path": path}, {"type": "text", "text": "What is happening?"}]}]
    chat = processor.apply_chat_template(
        msgs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"max_clips": 2},
    )
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True)
    assert prompt.endswith(" USER: <video>\nWhat is happening? ASSISTANT:")
    assert chat["input_ids"].tolist() == processor(text=prompt, videos=[path], max_clips=2)["input_ids"]
    torch.testing.assert_close(chat["motion_vectors"], direct["motion_vectors"])


# ---------------------------------------------------------------------------------------------- with the model


@pytest.fixture(scope="module")
def tiny_model_and_processor(tokenizer):
    from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
    from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
    from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
    from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    size = {"height": 28, "width": 28}
    processor = VideoLavitProcessor(
        image_processor=VideoLavitImageProcessor(size=size),
        video_processor=VideoLavitVideoProcessor(size=size),
        tokenizer=tokenizer,
    )
    visual = VideoLavitVisualTokenizerConfig(
        image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
        merger_intermediate_size=64, codebook_size=16, code_dim=8, projection_dim=32,
    )
    motion = VideoLavitMotionTokenizerConfig(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=16, code_dim=8,
    )
    n_text = len(tokenizer)
    text = dict(
        model_type="llama", vocab_size=n_text + 2 + 16 + 2 + 16, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    config = VideoLavitConfig(
        text_config=text, visual_tokenizer_config=visual, motion_tokenizer_config=motion, text_vocab_size=n_text
    )
    torch.manual_seed(0)
    return VideoLavitForConditionalGeneration(config).eval(), processor


def test_processor_outputs_drive_generate_and_pipeline(tiny_model_and_processor, testdata_dir):
    from transformers import pipeline

    model, processor = tiny_model_and_processor
    image = Image.open(testdata_dir / "dog.jpg")
    video_msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is happening?"}]}]
    image_msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    prompts = [processor.apply_chat_template(m, add_generation_prompt=True) for m in (video_msgs, image_msgs)]
    inputs = processor(
        text=prompts, images=[image], videos=[str(testdata_dir / "video7013.mp4")], max_clips=2, return_tensors="pt"
    )
    prompt_length = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, prompt_length + 5)
    assert out[:, prompt_length:].max() < len(processor.tokenizer)  # the understanding model answers in text
    new_text = processor.batch_decode(out[:, prompt_length:], skip_special_tokens=True)
    assert processor.decode_answers(out, prompt_length=prompt_length) == [t.split("\\n")[0].strip() for t in new_text]
    full = processor.batch_decode(out, skip_special_tokens=True)[1]  # placeholders and padding left out
    assert full.startswith(DEFAULT_SYSTEM_PROMPT + " USER:") and full.endswith("What is this? ASSISTANT: " + new_text[1])

    # pipeline("image-text-to-text") goes through apply_chat_template(tokenize=True) and post_process_image_text_to_text
    chat = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What is this?"}]}]
    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    torch.manual_seed(1)
    result = pipe(text=chat, max_new_tokens=4, generate_kwargs={"min_new_tokens": 4}, return_full_text=False)
    torch.manual_seed(1)
    direct_inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    direct = model.generate(**direct_inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    expected = processor.decode(direct[0, direct_inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert result[0]["generated_text"].strip() == expected.strip()
    # a generation argument given flat reaches the processor, which refuses it instead of ignoring it
    with pytest.raises(TypeError, match="min_new_tokens"):
        pipe(text=chat, max_new_tokens=4, min_new_tokens=4)


_REMOTE_LOAD = """
import sys
class Block:  # the package must not be importable: everything comes from the saved folder
    def find_spec(self, name, path=None, target=None):
        if name == "video_lavit" or name.startswith("video_lavit."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
from transformers import AutoProcessor
p = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
print(type(p).__module__.split(".")[0], type(p).__name__, type(p.video_processor).__name__)
print(p(text="the <image> cat", images=[__import__("numpy").zeros((8, 8, 3), "uint8")])["input_ids"][0])
"""


@pytest.mark.slow  # a fresh interpreter importing torch + transformers: ~25 s on the shared CPU
def test_remote_code_folder_loads_without_the_package(tokenizer, tmp_path):
    import os
    import subprocess
    import sys

    classes = (VideoLavitProcessor, VideoLavitImageProcessor, VideoLavitVideoProcessor)
    try:
        VideoLavitProcessor.register_for_auto_class()
        VideoLavitImageProcessor.register_for_auto_class("AutoImageProcessor")
        VideoLavitVideoProcessor.register_for_auto_class("AutoVideoProcessor")
        VideoLavitProcessor(tokenizer=tokenizer).save_pretrained(tmp_path)
    finally:
        for cls in classes:
            cls._auto_class = None
    assert {"processing_video_lavit.py", "chat_template.py", "video_processing_video_lavit.py"} <= {
        p.name for p in tmp_path.iterdir()
    }
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE_LOAD, str(tmp_path)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    classes_line, ids_line = result.stdout.strip().splitlines()[-2:]
    assert classes_line == "transformers_modules VideoLavitProcessor VideoLavitVideoProcessor"
    expected = VideoLavitProcessor(tokenizer=tokenizer)(text="the <image> cat", images=[_solid(0)])["input_ids"][0]
    assert ids_line == str(expected)
