"""VideoLavitConfig / VideoLavitModel / VideoLavitForConditionalGeneration at tiny sizes."""

import json
import warnings

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    LlamaConfig,
    LlamaForCausalLM,
)
from transformers.utils import logging as hf_logging

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit.conversion.convert_language_model import (
    check_complete,
    convert_language_model_state_dict,
    convert_llm_keys,
    llm_state_dict_shapes,
    load_language_model_weights,
)
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
from video_lavit.modeling.modeling_video_lavit import (
    VideoLavitForConditionalGeneration,
    VideoLavitModel,
)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

TEXT_VOCAB = 40
VISUAL_CODES = 24
MOTION_CODES = 16
VOCAB = TEXT_VOCAB + 2 + VISUAL_CODES + 2 + MOTION_CODES  # 84
HIDDEN = 32


def tiny_config(**overrides) -> VideoLavitConfig:
    kwargs = dict(
        text_config=dict(
            vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=1024,
        ),
        visual_tokenizer_config=dict(
            image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
            merger_intermediate_size=64, codebook_size=VISUAL_CODES, code_dim=8, projection_dim=HIDDEN,
        ),
        motion_tokenizer_config=dict(
            hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
            decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=MOTION_CODES, code_dim=8,
        ),
        text_vocab_size=TEXT_VOCAB,
        max_clips=3,
    )
    kwargs.update(overrides)
    return VideoLavitConfig(**kwargs)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoLavitForConditionalGeneration(tiny_config()).eval()


@pytest.fixture(scope="module")
def batch():
    """Row 0: video with 2 clips (right-padded); row 1: image; row 2: text only."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.tensor(
        [
            [1, 5, 6, -201, 7, 8, 0],
            [1, 9, -200, 10, 11, 12, 13],
            [1, 14, 15, 16, 0, 0, 0],
        ]
    )
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
    features = [torch.randn(n, HIDDEN, generator=g) for n in (3, 1, 4)]
    motion = torch.randint(0, MOTION_CODES, (2, 135), generator=g)
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        visual_features=features,
        motion_token_ids=motion,
        clips_per_video=torch.tensor([2]),
    )


# ------------------------------------------------------------------------------------------------ config
def test_config_defaults_are_the_released_layout():
    config = VideoLavitConfig()
    assert (config.image_start_token_id, config.image_end_token_id, config.visual_token_offset) == (32000, 32001, 32002)
    assert (config.motion_start_token_id, config.motion_end_token_id, config.motion_token_offset) == (48386, 48387, 48388)
    assert config.layout_vocab_size == config.text_config.vocab_size == 49412
    assert config.num_motion_tokens == 135 and config.max_clips == 16
    assert (config.image_placeholder_id, config.video_placeholder_id) == (-200, -201)
    text = config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.intermediate_size, text.max_position_embeddings) == (
        4096, 32, 11008, 4096
    )
    assert text.tie_word_embeddings is False and text.rms_norm_eps == 1e-5


def test_config_round_trip_and_partial_text_config(tmp_path):
    config = tiny_config()
    # a partial text config keeps the released values it does not override
    assert config.text_config.rms_norm_eps == 1e-5 and config.text_config.bos_token_id == 1
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "motion_token_offset" not in saved and "layout_vocab_size" not in saved  # derived, not serialized
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, VideoLavitConfig)
    without_path = lambda c: {k: v for k, v in c.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(loaded) == without_path(config)
    assert loaded.motion_token_offset == TEXT_VOCAB + 2 + VISUAL_CODES + 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(text_vocab_size=60), "smaller than the token layout"),
        (dict(image_placeholder_id=5), "must be negative"),
        (dict(image_placeholder_id=-201), "must differ"),
        (dict(max_clips=0), "max_clips"),
    ],
)
def test_config_rejects_inconsistent_layout(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_config_rejects_projection_width_mismatch():
    config = tiny_config()
    visual = config.visual_tokenizer_config.to_dict()
    visual["projection_dim"] = HIDDEN * 2
    with pytest.raises(ValueError, match="projection_dim"):
        tiny_config(visual_tokenizer_config=visual)


# ------------------------------------------------------------------------------------------------ forward
def test_splice_layout_labels_and_left_padding(model, batch):
    config = model.config
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    spliced = model.model.build_multimodal_embeddings(labels=labels, **batch)
    lengths = [6 - 1 + 2 * (3 + 2) + 2 * (135 + 2) + 0, 7 - 1 + 4 + 2 + 0, 4]
    # video: 2 clips of (IMG + K + /IMG) and (MOV + 135 + /MOV); image: K + 2
    lengths[0] = 5 + (1 + 3 + 1) + (1 + 135 + 1) + (1 + 1 + 1) + (1 + 135 + 1)
    assert spliced.attention_mask.sum(1).tolist() == lengths
    width = max(lengths)
    assert spliced.inputs_embeds.shape == (3, width, HIDDEN)
    # left padding: zeros, mask 0, labels ignored
    for b, n in enumerate(lengths):
        assert spliced.attention_mask[b, : width - n].sum() == 0
        assert torch.all(spliced.inputs_embeds[b, : width - n] == 0)
        assert torch.all(spliced.labels[b, : width - n] == -100)
        assert spliced.position_ids[b, width - n :].tolist() == list(range(n))
    embed = model.get_input_embeddings()
    row = spliced.inputs_embeds[0, width - lengths[0] :]
    # text 1 5 6, then clip 0: [IMG] F0 [/IMG] [MOV] m0 [/MOV]
    assert torch.equal(row[:3], embed(torch.tensor([1, 5, 6])))
    assert torch.equal(row[3], embed.weight[config.image_start_token_id])
    assert torch.equal(row[4:7], batch["visual_features"][0])
    assert torch.equal(row[7], embed.weight[config.image_end_token_id])
    assert torch.equal(row[8], embed.weight[config.motion_start_token_id])
    motion_ids = batch["motion_token_ids"][0] + config.motion_token_offset
    assert torch.equal(row[9:144], embed(motion_ids))
    assert torch.equal(row[144], embed.weight[config.motion_end_token_id])
    assert torch.equal(row[145], embed.weight[config.image_start_token_id])
    assert torch.equal(row[146], batch["visual_features"][1][0])
    assert torch.equal(row[-2:], embed(torch.tensor([7, 8])))
    # labels: text positions keep theirs, every visual/motion position is ignored
    row_labels = spliced.labels[0, width - lengths[0] :]
    assert row_labels[:3].tolist() == [1, 5, 6] and row_labels[-2:].tolist() == [7, 8]
    assert torch.all(row_labels[3:-2] == -100)
    image_row = spliced.inputs_embeds[1, width - lengths[1] :]
    assert torch.equal(image_row[3:7], batch["visual_features"][2])


def test_forward_loss_is_next_token_cross_entropy(model, batch):
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        out = model(labels=labels, **batch)
    assert out.logits.shape == (3, out.attention_mask.shape[1], VOCAB)
    shift_logits = out.logits[:, :-1].reshape(-1, VOCAB)
    shift_labels = out.labels[:, 1:].reshape(-1)
    expected = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)


def test_batched_forward_matches_rows(model, batch):
    with torch.no_grad():
        full = model(**batch)
        video = model(
            input_ids=batch["input_ids"][:1, :6], visual_features=batch["visual_features"][:2],
            motion_token_ids=batch["motion_token_ids"], clips_per_video=torch.tensor([2]),
        )
        image = model(input_ids=batch["input_ids"][1:2], visual_features=batch["visual_features"][2:])
        text = model(input_ids=batch["input_ids"][2:, :4])
    for b, single in enumerate((video, image, text)):
        n = single.logits.shape[1]
        torch.testing.assert_close(full.logits[b, -n:], single.logits[0], atol=1e-5, rtol=1e-5)


def test_raw_visual_inputs_match_precomputed(model):
    config = model.config
    g = torch.Generator().manual_seed(3)
    pixel_values = torch.randn(3, 3, 28, 28, generator=g)
    motion_vectors = torch.randn(2, 2, 24, 20, 36, generator=g)
    input_ids = torch.tensor([[1, 4, -201, 5], [1, -200, 6, 7]])
    with torch.no_grad():
        raw = model(
            input_ids=input_ids, pixel_values=pixel_values, motion_vectors=motion_vectors,
            clips_per_video=torch.tensor([2]), generator=torch.Generator().manual_seed(7),
        )
        features = model.model.get_visual_features(pixel_values, generator=torch.Generator().manual_seed(7))
        motion = model.model.get_motion_token_ids(motion_vectors)
        pre = model(
            input_ids=input_ids, visual_features=features, motion_token_ids=motion, clips_per_video=torch.tensor([2])
        )
    assert motion.shape == (2, config.num_motion_tokens)
    torch.testing.assert_close(raw.logits, pre.logits, atol=0, rtol=0)


def test_text_only_forward_equals_llama_with_converted_weights(model):
    """Conversion of a stock Llama state dict (`model.*`, `lm_head`) gives identical text logits."""
    text = model.config.text_config
    llama = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in text.to_dict().items() if k != "model_type"})).eval()
    ours = VideoLavitForConditionalGeneration(model.config).eval()
    load_language_model_weights(ours, convert_language_model_state_dict(llama.state_dict()))
    ids = torch.tensor([[1, 3, 4, 5, 60, 70]])
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, llama(input_ids=ids).logits, atol=0, rtol=0)


# ------------------------------------------------------------------------------------------------ generate
def test_batched_generation_equals_rows_and_only_text(model, batch):
    kwargs = dict(max_new_tokens=6, min_new_tokens=6)
    out = model.generate(**batch, **kwargs)
    assert out.shape == (3, 7 + 6)
    assert torch.equal(out[:, :7], batch["input_ids"])  # the prompt, placeholders included
    new = out[:, 7:]
    assert new.min() >= 0 and new.max() < TEXT_VOCAB  # ids >= the text vocabulary are suppressed
    rows = [
        model.generate(
            input_ids=batch["input_ids"][:1, :6], visual_features=batch["visual_features"][:2],
            motion_token_ids=batch["motion_token_ids"], clips_per_video=torch.tensor([2]), **kwargs,
        ),
        model.generate(input_ids=batch["input_ids"][1:2], visual_features=batch["visual_features"][2:], **kwargs),
        model.generate(input_ids=batch["input_ids"][2:, :4], text_only=True, **kwargs),
    ]
    for b, single in enumerate(rows):
        assert torch.equal(new[b], single[0, -6:]), (b, new[b], single)


def test_generation_with_and_without_cache_agree(model, batch):
    kwargs = dict(max_new_tokens=5, min_new_tokens=5)
    cached = model.generate(**batch, use_cache=True, **kwargs)
    uncached = model.generate(**batch, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


def test_generation_returns_dict_with_scores(model, batch):
    out = model.generate(**batch, max_new_tokens=3, min_new_tokens=3, output_scores=True, return_dict_in_generate=True)
    assert out.sequences.shape == (3, 10)
    scores = torch.stack(out.scores, dim=1)
    assert scores.shape == (3, 3, VOCAB)
    assert torch.isinf(scores[..., TEXT_VOCAB:]).all() and torch.isfinite(scores[..., 3:TEXT_VOCAB]).all()


def test_text_only_false_leaves_visual_ids_available(model):
    suppress = model.generate(input_ids=torch.tensor([[1, 5, 6]]), max_new_tokens=2, min_new_tokens=2, text_only=False,
                               suppress_tokens=list(range(0, TEXT_VOCAB)))
    assert suppress[0, -2:].min() >= TEXT_VOCAB


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.update(visual_features=b["visual_features"][:2]), "need 3 visual feature blocks"),
        (lambda b: b.update(clips_per_video=torch.tensor([1])), "need 2 visual feature blocks|motion_token_ids must"),
        (lambda b: b.update(clips_per_video=torch.tensor([1, 1])), "clips_per_video has 2 entries"),
        (lambda b: b.update(clips_per_video=None), "clips_per_video was not given"),
        (lambda b: b.update(motion_token_ids=b["motion_token_ids"] + MOTION_CODES), r"\[0, 16\)"),
        (lambda b: b.update(motion_token_ids=None), "neither motion_vectors nor motion_token_ids"),
        (lambda b: b.update(visual_features=None), "neither pixel_values nor visual_features"),
        (lambda b: b.update(input_ids=b["input_ids"].clone().index_put_((torch.tensor(2), torch.tensor(1)), torch.tensor(VOCAB))), "must lie in"),
        (lambda b: b.update(input_ids=b["input_ids"].clone().index_put_((torch.tensor(2), torch.tensor(1)), torch.tensor(-7))), "must lie in"),
        (lambda b: b.update(pixel_values=torch.zeros(3, 3, 28, 28)), "either pixel_values or visual_features"),
        (lambda b: b.update(visual_features=[f[:, :8] for f in b["visual_features"]]), r"shape \(K, 32\)"),
    ],
)
def test_bad_inputs_raise(model, batch, change, message):
    bad = dict(batch)
    change(bad)
    with pytest.raises(ValueError, match=message):
        model(**bad)


def test_more_clips_than_max_clips(model):
    n = model.config.max_clips + 1
    with pytest.raises(ValueError, match=f"{n} clips.*max_clips={n - 1}"):
        model(
            input_ids=torch.tensor([[1, -201]]), visual_features=[torch.zeros(1, HIDDEN)] * n,
            motion_token_ids=torch.zeros(n, 135, dtype=torch.long), clips_per_video=torch.tensor([n]),
        )


def test_visual_inputs_without_placeholder(model):
    with pytest.raises(ValueError, match="need 0 visual feature blocks"):
        model(input_ids=torch.tensor([[1, 5]]), visual_features=[torch.zeros(2, HIDDEN)])
    with pytest.raises(ValueError, match="no video placeholder"):
        model(input_ids=torch.tensor([[1, 5]]), clips_per_video=torch.tensor([1]))


def test_prompt_longer_than_context():
    config = tiny_config()
    config.text_config.max_position_embeddings = 64
    small = VideoLavitForConditionalGeneration(config).eval()
    with pytest.raises(ValueError, match="expands to 144 positions.*context of 64"):
        small(
            input_ids=torch.tensor([[1, 2, -201, 3]]), visual_features=[torch.zeros(2, HIDDEN)],
            motion_token_ids=torch.zeros(1, 135, dtype=torch.long), clips_per_video=torch.tensor([1]),
        )


# ------------------------------------------------------------------------------------------------ HF plumbing
def test_save_load_round_trip_and_auto_classes(model, batch, tmp_path):
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        expected = model(**batch).logits
    for auto in (AutoModelForCausalLM, AutoModelForImageTextToText, AutoModelForMultimodalLM):
        loaded = auto.from_pretrained(tmp_path, dtype=torch.float32).eval()
        assert type(loaded) is VideoLavitForConditionalGeneration
        with torch.no_grad():
            assert torch.equal(loaded(**batch).logits, expected)
    base = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert type(base) is VideoLavitModel
    assert torch.equal(base.language_model.embed_tokens.weight, model.model.language_model.embed_tokens.weight)
    generation_config = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation_config["max_new_tokens"] == 512 and "min_new_tokens" not in generation_config


def test_no_split_modules_and_untied_head(model):
    assert {"LlamaDecoderLayer", "VideoLavitEvaLayer", "VideoLavitMotionTokenizerBlock"} <= set(model._no_split_modules)
    assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()


def test_gradient_checkpointing_gives_same_gradients(batch):
    torch.manual_seed(0)
    model = VideoLavitForConditionalGeneration(tiny_config()).train()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    def grads():
        model.zero_grad()
        model(labels=labels, **batch).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    reference = grads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.is_gradient_checkpointing
    checkpointed = grads()
    assert reference.keys() == checkpointed.keys() and any(k.startswith("model.language_model.layers") for k in reference)
    for name in reference:
        torch.testing.assert_close(checkpointed[name], reference[name], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ conversion
def test_conversion_maps_every_key_and_rejects_unknown(model):
    original = {("model." + k[len("model.language_model."):] if k.startswith("model.language_model.") else k): v
                for k, v in model.state_dict().items() if k.startswith("model.language_model.") or k == "lm_head.weight"}
    original["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(4)  # old transformers wrote these
    converted = convert_llm_keys(original)
    check_complete(converted, llm_state_dict_shapes(model))
    with pytest.raises(ValueError, match="no mapping.*vision_tower.weight"):
        convert_llm_keys({**original, "vision_tower.weight": torch.zeros(1)})
    missing = dict(converted)
    missing.pop("lm_head.weight")
    with pytest.raises(ValueError, match="no source.*lm_head.weight"):
        load_language_model_weights(model, missing)
    meta = convert_language_model_state_dict({k: torch.empty(v.shape, device="meta") for k, v in original.items()})
    assert all(t.is_meta for t in meta.values()) and meta.keys() == converted.keys()


# ------------------------------------------------------------------------------------------------ processor + pipeline
@pytest.fixture(scope="module")
def saved_with_processor(tmp_path_factory):
    from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
    from video_lavit.processing.tokenizer_utils import build_tiny_llama_tokenizer

    tokenizer = build_tiny_llama_tokenizer()
    text_vocab = len(tokenizer)
    config = tiny_config(
        text_vocab_size=text_vocab,
        text_config=dict(
            vocab_size=text_vocab + 2 + VISUAL_CODES + 2 + MOTION_CODES, hidden_size=HIDDEN, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
        ),
        visual_tokenizer_config=dict(
            image_size=224, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
            merger_intermediate_size=64, codebook_size=VISUAL_CODES, code_dim=8, projection_dim=HIDDEN,
        ),
    )
    torch.manual_seed(0)
    model = VideoLavitForConditionalGeneration(config).eval()
    processor = VideoLavitProcessor(tokenizer=tokenizer)
    folder = tmp_path_factory.mktemp("tiny_video_lavit")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder, model, processor


def test_image_text_to_text_pipeline(saved_with_processor, testdata_dir):
    from PIL import Image
    from transformers import pipeline

    folder, model, processor = saved_with_processor
    pipe = pipeline("image-text-to-text", model=str(folder))
    assert type(pipe.model) is VideoLavitForConditionalGeneration
    image = Image.open(testdata_dir / "dog.jpg")
    prompt = "USER: <image>\nwhat is it? ASSISTANT:"
    torch.manual_seed(0)  # the keyframe token selector samples its keep decision
    answer = pipe(images=image, text=prompt, max_new_tokens=5, generate_kwargs={"min_new_tokens": 5},
                  return_full_text=False)[0]["generated_text"]
    inputs = processor(text=prompt, images=image, return_tensors="pt")
    torch.manual_seed(0)
    ids = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5)
    expected = processor.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.strip() == expected.strip() and expected.strip()


def test_video_question_answering_end_to_end(saved_with_processor, testdata_dir):
    """processor(text, videos) -> generate: keyframes + motion vectors go through both tokenizers; a text-only row in
    the same batch answers as it does alone."""
    _, model, processor = saved_with_processor
    prompts = ["USER: <video>\nwhat happens? ASSISTANT:", "USER: hi ASSISTANT:"]
    inputs = processor(text=prompts, videos=[str(testdata_dir / "video7013.mp4")], return_tensors="pt")
    n_clips = int(inputs["clips_per_video"][0])
    assert inputs["motion_vectors"].shape[0] == n_clips >= 1
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, generator=torch.Generator().manual_seed(0))
    length = inputs["input_ids"].shape[1]
    assert out.shape == (2, length + 4) and out[:, length:].max() < processor.text_vocab_size
    alone = processor(text=prompts[1:], return_tensors="pt")
    single = model.generate(**alone, max_new_tokens=4, min_new_tokens=4, text_only=True)
    assert torch.equal(out[1, length:], single[0, -4:])
    again = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_convert_release_checkpoints_end_to_end(fixtures_dir, tmp_path):
    """A tiny `language_model_sft/` folder in the original layout (Llama keys + `model.visual_tokenizer.*` +
    `model.motion_tokenizer.*`, original names taken from the tokenizer fixtures) converts into a complete folder."""
    from video_lavit.conversion.convert_language_model import convert_checkpoint
    from video_lavit.conversion.parity import motion_tokenizer as motion_parity
    from video_lavit.conversion.parity import visual_tokenizer as visual_parity
    from video_lavit.conversion.parity.common import Fixture
    from video_lavit.processing.tokenizer_utils import build_tiny_llama_tokenizer

    visual_fixture = Fixture.load(fixtures_dir / "visual_tokenizer.json")
    visual_weights = dict(visual_fixture.weights())
    # the fixture projects to the released LLM width; cut `vit_proj` down to a tiny LLM width
    visual_weights["vit_proj.weight"] = visual_weights["vit_proj.weight"][:HIDDEN]
    visual_weights["vit_proj.bias"] = visual_weights["vit_proj.bias"][:HIDDEN]
    visual_config = visual_parity.config_from_fixture(visual_fixture.spec, visual_weights)
    motion_fixture = Fixture.load(fixtures_dir / "motion_tokenizer.json")
    motion_config = motion_parity.build_from_fixture(motion_fixture).config
    text_vocab = 8
    vocab = text_vocab + 2 + visual_config.codebook_size + 2 + motion_config.codebook_size
    text = dict(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5)
    config = VideoLavitConfig(text_config=text, visual_tokenizer_config=visual_config,
                              motion_tokenizer_config=motion_config, text_vocab_size=text_vocab)
    llama = LlamaForCausalLM(LlamaConfig(**text)).eval()
    original = dict(llama.state_dict())
    original.update({"model.visual_tokenizer." + k: v for k, v in visual_weights.items()})
    original.update({"model.motion_tokenizer." + k: v for k, v in motion_fixture.weights().items()})
    source = tmp_path / "release" / "language_model_sft"
    source.mkdir(parents=True)
    torch.save(original, source / "pytorch_model.bin")
    (source / "config.json").write_text(json.dumps({"model_type": "llama", **text}))
    build_tiny_llama_tokenizer().save_pretrained(source)

    convert_checkpoint(tmp_path / "release", tmp_path / "out", "understanding", torch.float32, config=config)
    loaded = VideoLavitForConditionalGeneration.from_pretrained(tmp_path / "out", dtype=torch.float32).eval()
    ids = torch.tensor([[1, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, llama(input_ids=ids).logits)
    reference_motion = motion_parity.build_from_fixture(motion_fixture).state_dict()
    loaded_motion = loaded.motion_tokenizer.state_dict()
    assert loaded_motion.keys() == reference_motion.keys()
    for key, value in reference_motion.items():
        assert torch.equal(loaded_motion[key], value), key
    projection = loaded.visual_tokenizer.feature_projection
    assert torch.equal(projection.weight, visual_weights["vit_proj.weight"])
    assert any((tmp_path / "out" / name).is_file() for name in ("tokenizer.model", "tokenizer.json"))

    # generation layout: Llama-only language_model/, EVA + tokenizer_encoder in visual_tokenizer/, vit_proj in
    # language_model/visual_weight.bin, motion_tokenizer.bin; it assembles the same model
    generation = tmp_path / "release" / "language_model"
    (tmp_path / "release" / "visual_tokenizer").mkdir()
    generation.mkdir()
    torch.save(dict(llama.state_dict()), generation / "pytorch_model.bin")
    (generation / "config.json").write_text(json.dumps({"model_type": "llama", **text}))
    build_tiny_llama_tokenizer().save_pretrained(generation)
    eva = {k[len("encoder."):]: v for k, v in visual_weights.items() if k.startswith("encoder.")}
    torch.save(eva, tmp_path / "release" / "visual_tokenizer" / "eva_vitg_psz14.bin")
    rest = {k: v for k, v in visual_weights.items() if not k.startswith(("encoder.", "vit_proj."))}
    torch.save(rest, tmp_path / "release" / "visual_tokenizer" / "tokenizer_encoder.bin")
    torch.save({k: v for k, v in visual_weights.items() if k.startswith("vit_proj.")}, generation / "visual_weight.bin")
    torch.save(dict(motion_fixture.weights()), tmp_path / "release" / "motion_tokenizer.bin")
    convert_checkpoint(tmp_path / "release", tmp_path / "out_gen", "generation", torch.float32, config=config)
    generated = VideoLavitForConditionalGeneration.from_pretrained(tmp_path / "out_gen", dtype=torch.float32)
    understanding_state = loaded.state_dict()
    generation_state = generated.state_dict()
    assert generation_state.keys() == understanding_state.keys()
    assert all(torch.equal(generation_state[k], understanding_state[k]) for k in understanding_state)

    # every tensor is accounted for: a stray key or a missing tokenizer tensor is an error
    torch.save({**original, "model.extra.weight": torch.zeros(1)}, source / "pytorch_model.bin")
    with pytest.raises(ValueError, match="model.extra.weight|extra.weight"):
        convert_checkpoint(tmp_path / "release", tmp_path / "out2", "understanding", torch.float32, config=config)
    torch.save({k: v for k, v in original.items() if "vit_proj" not in k}, source / "pytorch_model.bin")
    with pytest.raises(ValueError, match="feature_projection"):
        convert_checkpoint(tmp_path / "release", tmp_path / "out3", "understanding", torch.float32, config=config)


class _ForceSequence:
    """Logits processor that makes greedy decoding emit `ids` in order (then keeps emitting the last one)."""

    def __init__(self, ids, prompt_length):
        self.ids, self.prompt_length = ids, prompt_length

    def __call__(self, input_ids, scores):
        step = min(input_ids.shape[1] - self.prompt_length, len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[step]] = 0
        return forced


def test_understanding_generation_stops_on_the_literal_separator(saved_with_processor, testdata_dir):
    from transformers import LogitsProcessorList
    from PIL import Image

    _, model, processor = saved_with_processor
    tokenizer = processor.tokenizer
    answer = tokenizer(" the answer \\n and more words", add_special_tokens=False).input_ids
    inputs = processor(text="USER: <image>\nq? ASSISTANT:", images=Image.open(testdata_dir / "dog.jpg"), return_tensors="pt")
    # generation restarts from embeddings, so the ids GenerationMixin sees start empty (prompt_length 0)
    force = LogitsProcessorList([_ForceSequence(answer, 0)])
    kwargs = dict(max_new_tokens=len(answer), logits_processor=force, generator=torch.Generator().manual_seed(0))
    stopped = model.generate(**inputs, tokenizer=tokenizer, **kwargs)
    text = processor.decode(stopped[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.endswith("\\n") and "more" not in text
    full = model.generate(**inputs, **kwargs)  # without a tokenizer only EOS / max_new_tokens stop
    assert full.shape[1] == inputs["input_ids"].shape[1] + len(answer)
    assert processor.decode_answers(full, prompt_length=inputs["input_ids"].shape[1]) == ["the answer"]


def test_multiple_return_sequences_keep_their_prompt(model, batch):
    out = model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=True, num_return_sequences=2)
    assert out.shape == (6, 7 + 3)
    assert torch.equal(out[:, :7], batch["input_ids"].repeat_interleave(2, dim=0))


@pytest.mark.slow
def test_remote_code_export_loads_without_the_package(model, tmp_path):
    import subprocess
    import sys

    from video_lavit.conversion.convert_language_model import save_with_remote_code

    save_with_remote_code(model, tmp_path)
    assert (tmp_path / "modeling_video_lavit.py").is_file() and (tmp_path / "configuration_video_lavit.py").is_file()
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    assert not hasattr(model.config, "auto_map") and VideoLavitForConditionalGeneration._auto_class is None
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        torch.save(model(input_ids=ids).logits, tmp_path / "expected.pt")
    code = (
        "import sys; sys.modules['video_lavit'] = None\n"  # the package must not be importable
        "import torch\nfrom transformers import AutoModelForImageTextToText\n"
        f"m = AutoModelForImageTextToText.from_pretrained({str(tmp_path)!r}, trust_remote_code=True, dtype=torch.float32)\n"
        "assert type(m).__module__.startswith('transformers_modules'), type(m)\n"
        f"out = m.eval()(input_ids=torch.tensor({ids.tolist()})).logits\n"
        f"assert torch.equal(out, torch.load({str(tmp_path / 'expected.pt')!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
