"""Finetuning the language model: collator (both directions), Trainer, LoRA + new vocabulary rows, adapters
save/load/merge, activation checkpointing, and the train_llm script."""

import json

import pytest
import torch
from transformers import Trainer, TrainingArguments

from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from video_lavit.training import (
    VideoLavitDataCollator,
    count_trainable_parameters,
    freeze_tokenizers,
    multimodal_token_indices,
    video_lavit_lora_config,
)
from video_lavit.training import train_llm

HIDDEN = 32


def tiny_config():
    visual = VideoLavitVisualTokenizerConfig(
        image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
        merger_intermediate_size=64, codebook_size=24, code_dim=8, projection_dim=HIDDEN,
    )
    motion = VideoLavitMotionTokenizerConfig(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=16, code_dim=8,
    )
    text = dict(vocab_size=76, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=4, max_position_embeddings=400)
    return VideoLavitConfig(text_config=text, visual_tokenizer_config=visual, motion_tokenizer_config=motion,
                            text_vocab_size=32)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = VideoLavitForConditionalGeneration(tiny_config())
    path = tmp_path_factory.mktemp("tiny_video_lavit")
    model.save_pretrained(path)
    return path


def load(base_dir):
    return VideoLavitForConditionalGeneration.from_pretrained(base_dir, dtype=torch.float32)


def generation_features(n, seed=0, clips=1):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(
            text_ids=torch.randint(3, 32, (4 + i % 3,), generator=g),
            keyframe_codes=[torch.randint(0, 24, (3 + i % 2,), generator=g) for _ in range(clips)],
            motion_codes=torch.randint(0, 16, (clips, 135), generator=g),
        )
        for i in range(n)
    ]


def understanding_features(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(prompt_ids=torch.tensor([1, 5, -200, 7]), answer_ids=torch.tensor([9, 10, 2]),
             visual_features=[torch.randn(3, HIDDEN, generator=g)]),
        dict(prompt_ids=torch.tensor([1, -201, 7]), answer_ids=torch.tensor([11, 2]),
             visual_features=[torch.randn(3, HIDDEN, generator=g), torch.randn(2, HIDDEN, generator=g)],
             motion_token_ids=torch.randint(0, 16, (2, 135), generator=g), clips_per_video=torch.tensor([2])),
    ]


def test_collator_generation_direction_layout_and_labels():
    config = tiny_config()
    feature = dict(text_ids=[5, 6, 7], keyframe_codes=[[0, 23], [4]], motion_codes=torch.arange(270).reshape(2, 135) % 16)
    batch = VideoLavitDataCollator(config)([feature, generation_features(1)[0]])
    motion0 = [58] + [60 + c for c in (torch.arange(135) % 16).tolist()] + [59]
    motion1 = [58] + [60 + c for c in ((torch.arange(135, 270)) % 16).tolist()] + [59]
    expected = [5, 6, 7, 32, 34, 57, 33] + motion0 + [32, 38, 33] + motion1
    n = len(expected)
    assert batch["input_ids"][0, :n].tolist() == expected
    assert batch["labels"][0, :3].tolist() == [-100] * 3 and batch["labels"][0, 3:n].tolist() == expected[3:]
    assert batch["attention_mask"][0].sum() == n
    # the shorter row is right-padded with the pad id and masked
    m = int(batch["attention_mask"][1].sum())
    assert m < n and (batch["labels"][1, m:] == -100).all() and (batch["input_ids"][1, m:] == 0).all()
    text_too = VideoLavitDataCollator(config, train_on_text=True)([feature])
    assert text_too["labels"][0, :3].tolist() == [5, 6, 7]


def test_collator_understanding_direction_masks_prompt_and_visual_positions(base_dir):
    config = tiny_config()
    features = understanding_features()
    batch = VideoLavitDataCollator(config, padding_side="left")(features)
    assert batch["labels"][0].tolist() == [-100, -100, -100, -100, 9, 10, 2]
    assert batch["labels"][1].tolist() == [-100] * 5 + [11, 2]
    assert batch["attention_mask"][1].tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert len(batch["visual_features"]) == 3 and batch["motion_token_ids"].shape == (2, 135)
    assert batch["clips_per_video"].tolist() == [2]
    model = load(base_dir)
    out = model(**batch)
    # after the placeholder expansion only the answer ids carry a loss
    assert sorted(out.labels[out.labels != -100].tolist()) == sorted([9, 10, 2, 11, 2])
    assert torch.isfinite(out.loss)


def test_collator_rejects_bad_input():
    collator = VideoLavitDataCollator(tiny_config())
    good = generation_features(1)[0]
    with pytest.raises(ValueError, match="expected 135 motion codes"):
        collator([{**good, "motion_codes": torch.zeros(1, 134, dtype=torch.long)}])
    with pytest.raises(ValueError, match=r"motion codes must lie in \[0, 16\)"):
        collator([{**good, "motion_codes": torch.full((1, 135), 16)}])
    with pytest.raises(ValueError, match=r"must have shape \[1 clips, 135\]"):
        collator([{**good, "motion_codes": torch.zeros(2, 135, dtype=torch.long)}])
    with pytest.raises(ValueError, match=r"image codes must lie in \[0, 24\)"):
        collator([{**good, "keyframe_codes": [torch.tensor([24])]}])
    with pytest.raises(ValueError, match=r"text_ids must lie in \[0, 32\)"):
        collator([{**good, "text_ids": torch.tensor([40])}])
    with pytest.raises(TypeError, match="integer ids"):
        collator([{**good, "text_ids": torch.tensor([1.0])}])
    with pytest.raises(ValueError, match="more than max_length=100"):
        VideoLavitDataCollator(tiny_config(), max_length=100)([good])
    with pytest.raises(ValueError, match="expected text_ids"):
        collator([{"input_ids": [1, 2]}])
    with pytest.raises(ValueError, match="answer_ids must be text ids"):
        collator([dict(prompt_ids=[1, -200], answer_ids=[40])])
    with pytest.raises(ValueError, match="placeholder"):
        collator([dict(prompt_ids=[1, -7], answer_ids=[4])])


def _eval_loss(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).loss.item()


def _train(model, features, tmp_path, steps=12, lr=1e-2, **extra):
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=4, max_steps=steps, learning_rate=lr,
        use_cpu=True, report_to="none", save_strategy="no", remove_unused_columns=False, disable_tqdm=True,
        logging_steps=1, seed=0, **extra,
    )
    Trainer(model=model, args=args, train_dataset=features, data_collator=VideoLavitDataCollator(model.config)).train()
    model.eval()


def test_trainer_full_finetuning_lowers_the_loss(base_dir, tmp_path):
    model = load(base_dir)
    freeze_tokenizers(model)
    features = generation_features(4) + understanding_features()
    batch = VideoLavitDataCollator(model.config)(features)
    before = _eval_loss(model, batch)
    _train(model, features, tmp_path)
    assert _eval_loss(model, batch) < 0.8 * before
    assert not any(p.requires_grad for p in model.model.visual_tokenizer.parameters())


@pytest.mark.parametrize("rows", ["delta", "full"])
def test_lora_trains_llm_and_new_rows_and_round_trips(base_dir, tmp_path, rows):
    from peft import PeftModel, get_peft_model

    model = get_peft_model(load(base_dir), video_lavit_lora_config(tiny_config(), new_token_rows=rows))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("language_model" in n or "lm_head" in n for n in names)
    assert not any("tokenizer" in n for n in names)
    trainable, total = count_trainable_parameters(model)
    assert 0 < trainable < total

    features = generation_features(6, clips=2)
    batch = VideoLavitDataCollator(model.config)(features)
    base_embed = load(base_dir).get_input_embeddings().weight.detach().clone()
    before = _eval_loss(model, batch)
    _train(model, features, tmp_path, steps=10, lr=2e-2)
    assert _eval_loss(model, batch) < before

    with torch.no_grad():
        logits = model(**batch).logits
        merged_embed = model.get_base_model().get_input_embeddings().weight.detach().clone()
    new_rows = multimodal_token_indices(model.config)
    text_rows = list(range(new_rows[0]))
    assert not torch.allclose(merged_embed[new_rows], base_embed[new_rows])
    if rows == "delta":
        torch.testing.assert_close(merged_embed[text_rows], base_embed[text_rows], rtol=0, atol=0)

    adapter_dir = tmp_path / "adapter"
    model.save_pretrained(adapter_dir)
    reloaded = PeftModel.from_pretrained(load(base_dir), adapter_dir).eval()
    merged = PeftModel.from_pretrained(load(base_dir), adapter_dir).merge_and_unload().eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(merged(**batch).logits, logits, rtol=1e-4, atol=1e-5)
    assert type(merged) is VideoLavitForConditionalGeneration
    # the trained adapters drive token generation; merged weights generate the same ids
    prompts = [torch.tensor([5, 6, 7]), torch.tensor([9, 4])]
    kwargs = dict(do_sample_image=False, max_new_tokens=6, min_new_tokens=2, show_progress=False)
    from_adapter = model.generate_video_tokens(prompts, **kwargs)
    from_merged = merged.generate_video_tokens(prompts, **kwargs)
    assert [s.tolist() for s in from_adapter.sequences] == [s.tolist() for s in from_merged.sequences]


def test_activation_checkpointing_gives_the_same_gradients(base_dir):
    batch = VideoLavitDataCollator(tiny_config())(generation_features(3) + understanding_features())
    grads = []
    for checkpointing in (False, True):
        model = load(base_dir)
        freeze_tokenizers(model)
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6)


def test_train_llm_script_lora_and_merge(base_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for feature in generation_features(4):
            f.write(json.dumps({k: (v.tolist() if isinstance(v, torch.Tensor) else [c.tolist() for c in v])
                                for k, v in feature.items()}) + "\n")
    out = tmp_path / "run"
    metrics = train_llm.main([
        "--model", str(base_dir), "--dataset", str(data), "--output-dir", str(out), "--lora",
        "--new-token-rows", "full", "--merge-lora", "--max-steps", "3", "--batch-size", "2", "--use-cpu",
        "--learning-rate", "1e-3", "--logging-steps", "1", "--activation-checkpointing",
    ])
    assert len(metrics["logged_losses"]) == 3
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    merged = VideoLavitForConditionalGeneration.from_pretrained(out / "merged", dtype=torch.float32)
    base = load(base_dir)
    assert not torch.equal(merged.lm_head.weight, base.lm_head.weight)
