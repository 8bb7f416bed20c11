"""Tests of the keyframe (visual) tokenizer: parity, conversion, API behaviour, round trips, bad input."""

import json

import pytest
import torch

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit.conversion import convert_visual_tokenizer as conv
from video_lavit.conversion import verify_parity
from video_lavit.conversion.parity.common import Fixture
from video_lavit.conversion.parity.visual_tokenizer import build_from_fixture
from video_lavit.modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
from video_lavit.modeling.modeling_visual_tokenizer import (
    VideoLavitVisualTokenizer,
    policy_masked_softmax,
    sample_keep_decision,
)

torch.set_num_threads(1)


def tiny_config(**overrides) -> VideoLavitVisualTokenizerConfig:
    values = dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        clip_projection_dim=16,
        merger_num_hidden_layers=2,
        merger_num_attention_heads=4,
        merger_intermediate_size=40,
        codebook_size=64,
        code_dim=8,
        projection_dim=24,
    )
    values.update(overrides)
    return VideoLavitVisualTokenizerConfig(**values)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoLavitVisualTokenizer(tiny_config()).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _ids(output):
    return [t.tolist() for t in output.token_ids]


# ------------------------------------------------------------------------------------------------- parity
def test_parity_fixture_and_released_keys(fixtures_dir, released_keys_dir):
    argv = [str(fixtures_dir), "--only", "visual_tokenizer"]
    for stem in ("eva_vitg_psz14", "tokenizer_encoder", "vit_proj"):
        argv += ["--released-keys", str(released_keys_dir / f"visual_tokenizer__{stem}.json")]
    assert verify_parity.main(argv) == 0


def test_released_default_config_matches_spec():
    config = VideoLavitVisualTokenizerConfig()
    assert (config.image_size, config.patch_size, config.num_patches) == (224, 14, 256)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (1408, 40, 16)
    assert (config.intermediate_size, config.layer_norm_eps) == (6144, 1e-6)
    assert (config.merger_num_hidden_layers, config.merger_intermediate_size, config.merger_layer_norm_eps) == (
        12, 6144, 1e-5,
    )
    assert (config.codebook_size, config.code_dim, config.projection_dim) == (16384, 32, 4096)
    with torch.device("meta"):
        full = VideoLavitVisualTokenizer(config)
    # spec §3.7: 813 tensors, 1,422,408,322 parameters
    assert len(full.state_dict()) == 813
    assert sum(p.numel() for p in full.parameters()) == 1_422_408_322


# ---------------------------------------------------------------------------------------------- conversion
def test_conversion_rejects_unknown_missing_and_duplicate_keys(fixtures_dir):
    weights = Fixture.load(fixtures_dir / "visual_tokenizer.json").weights()
    with pytest.raises(ValueError, match="encoder.bogus"):
        conv.convert_state_dict({**weights, "encoder.bogus": torch.zeros(1)})
    converted = conv.convert_state_dict(weights)
    model = build_from_fixture(Fixture.load(fixtures_dir / "visual_tokenizer.json"))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    incomplete = dict(converted)
    del incomplete["vision_model.head.weight"]
    with pytest.raises(ValueError, match="vision_model.head.weight"):
        conv.check_complete(incomplete, expected)
    with pytest.raises(ValueError, match="quantizer.codebook.weight"):
        conv.merge_parts([("a", {"quantizer.codebook.weight": torch.zeros(1)}), ("b", {"quantizer.codebook.weight": torch.zeros(1)})])
    # a key of another released file is refused, not silently accepted
    with pytest.raises(ValueError, match="do not belong.*vision_model.embeddings.cls_token"):
        conv.convert_vit_proj_state_dict({"vit_proj.bias": torch.zeros(1), "encoder.cls_token": torch.zeros(1)})
    with pytest.raises(ValueError, match="encoder.vit_proj.weight"):
        conv.convert_eva_state_dict({"cls_token": torch.zeros(1), "vit_proj.weight": torch.zeros(1)})


def test_convert_released_layout_end_to_end(tmp_path, fixtures_dir):
    """Split the fixture weights into the released files, convert them through the CLI, compare outputs."""
    fixture = Fixture.load(fixtures_dir / "visual_tokenizer.json")
    weights = fixture.weights()
    reference = build_from_fixture(fixture)
    root = tmp_path / "release"
    (root / "visual_tokenizer").mkdir(parents=True)
    (root / "language_model_sft").mkdir()
    eva = {k[len("encoder."):]: v.bfloat16() for k, v in weights.items() if k.startswith("encoder.")}
    encoder = {k: v.bfloat16() for k, v in weights.items() if not k.startswith(("encoder.", "vit_proj."))}
    sft = {f"model.visual_tokenizer.{k}": v.bfloat16() for k, v in weights.items()}
    sft["model.embed_tokens.weight"] = torch.zeros(4, 4)
    torch.save(eva, root / "visual_tokenizer/eva_vitg_psz14.bin")
    torch.save(encoder, root / "visual_tokenizer/tokenizer_encoder.bin")
    torch.save(sft, root / "language_model_sft/pytorch_model-00001-of-00001.bin")
    config_path = tmp_path / "config.json"
    reference.config.to_json_file(str(config_path))

    io = fixture.tensors()
    for source in ("tokenizer_encoder", "language_model_sft"):
        out_dir = tmp_path / source
        argv = [str(root), str(out_dir), "--merger-source", source, "--dtype", "float32", "--config", str(config_path)]
        assert conv.main(argv) == 0
        assert (out_dir / "model.safetensors").is_file()
        loaded = VideoLavitVisualTokenizer.from_pretrained(out_dir, dtype=torch.float32).eval()
        for key, value in reference.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        with torch.no_grad():
            out = loaded.tokenize(io["input.images"], gumbel_noise=io["intermediate.gumbel_noise"])
        assert torch.equal(torch.cat(out.token_ids), io["output.codes"])

    # a LaVIT-era language_model/visual_weight.bin takes precedence over the SFT shards for vit_proj
    (root / "language_model").mkdir()
    marked = {"vit_proj.weight": weights["vit_proj.weight"] + 1, "vit_proj.bias": weights["vit_proj.bias"]}
    torch.save(marked, root / "language_model/visual_weight.bin")
    converted = conv.convert_checkpoint(root)
    assert torch.equal(converted["feature_projection.weight"], marked["vit_proj.weight"])


# --------------------------------------------------------------------------------------------- behaviour
def test_tokenize_shapes_and_consistency(model, images):
    with torch.no_grad():
        out = model.tokenize(images, generator=torch.Generator().manual_seed(3))
        features = model.encode_features(images, generator=torch.Generator().manual_seed(3))
    n = model.config.num_patches
    assert out.keep_mask.shape == (3, n) and out.keep_mask.dtype == torch.bool
    assert out.num_tokens.tolist() == out.keep_mask.sum(-1).tolist()
    assert [len(t) for t in out.token_ids] == out.num_tokens.tolist()
    codes = torch.cat(out.token_ids)
    assert codes.dtype == torch.long and codes.min() >= 0 and codes.max() < model.config.codebook_size
    assert torch.equal(torch.cat(out.quantized), model.get_code_embeddings(codes))
    # same generator seed -> same selection on the understanding path
    assert [f.shape for f in features] == [(k, 24) for k in out.num_tokens.tolist()]
    # quantizer = argmin of |z|^2 + |e|^2 - 2 z.e with l2-normalised z and the stored codebook
    z = torch.nn.functional.normalize(model.code_projection(out.merged_features[out.keep_mask]), dim=-1)
    assert torch.equal(torch.cdist(z, model.quantizer.codebook.weight).argmin(-1), codes)


def test_generator_determinism(model, images):
    with torch.no_grad():
        a = model.tokenize(images, generator=torch.Generator().manual_seed(5))
        b = model.tokenize(images, generator=torch.Generator().manual_seed(5))
        c = model.tokenize(images, generator=torch.Generator().manual_seed(6))
    assert _ids(a) == _ids(b) and torch.equal(a.keep_mask, b.keep_mask)
    assert not torch.equal(a.keep_mask, c.keep_mask)
    # explicit noise drawn the same way reproduces the generator path
    noise = -torch.empty(3, model.config.num_patches, 2).exponential_(generator=torch.Generator().manual_seed(5)).log()
    with torch.no_grad():
        d = model.tokenize(images, gumbel_noise=noise)
    assert torch.equal(d.keep_mask, a.keep_mask) and _ids(d) == _ids(a)


def test_deterministic_mode(model, images):
    torch.manual_seed(100)
    with torch.no_grad():
        a = model.tokenize(images, deterministic=True)
        torch.manual_seed(200)
        b = model.tokenize(images, deterministic=True)
    assert _ids(a) == _ids(b)
    log_probs = a.selector_log_probs
    assert torch.equal(a.keep_mask, log_probs[..., 0] >= log_probs[..., 1])


def test_sample_keep_decision_gradient_and_values():
    log_probs = torch.randn(2, 7, 2).log_softmax(-1).requires_grad_()
    policy, keep = sample_keep_decision(log_probs, generator=torch.Generator().manual_seed(0))
    assert torch.equal(policy.detach(), keep.float())
    policy.sum().backward()
    assert log_probs.grad is not None and log_probs.grad.abs().sum() > 0  # straight-through estimator
    with pytest.raises(ValueError, match=r"\(2, 7, 2\).*\(2, 7\)"):
        sample_keep_decision(log_probs, gumbel_noise=torch.zeros(2, 7))


def test_policy_masked_softmax():
    scores = torch.randn(1, 1, 3, 4)
    allowed = torch.tensor([1.0, 0.0, 1.0, 0.0])
    probs = policy_masked_softmax(scores, allowed, eps=1e-6)
    expected = torch.softmax(scores[..., [0, 2]], -1)
    assert torch.allclose(probs[..., [0, 2]], expected, atol=1e-5)
    assert (probs[..., [1, 3]] < 1e-5).all()
    empty = policy_masked_softmax(scores, torch.zeros(4), eps=1e-6)
    assert torch.allclose(empty, torch.full_like(empty, 0.25))  # no allowed key -> uniform average


def test_nothing_kept_gives_empty_sequences(model, images):
    noise = torch.zeros(3, model.config.num_patches, 2)
    noise[..., 1] = 1e4  # the drop class always wins
    with torch.no_grad():
        out = model.tokenize(images, gumbel_noise=noise)
        features = model.encode_features(images, gumbel_noise=noise)
    assert out.num_tokens.tolist() == [0, 0, 0] and all(t.numel() == 0 for t in out.token_ids)
    assert all(f.shape == (0, 24) for f in features)
    assert [t.tolist() for t in model.codes_to_llm_ids(out.token_ids, add_special=True)] == [[32000, 32001]] * 3


def test_llm_ids(model):
    codes = [torch.tensor([0, 5]), torch.tensor([63])]
    assert [t.tolist() for t in model.codes_to_llm_ids(codes)] == [[32002, 32007], [32065]]
    custom = model.codes_to_llm_ids(codes, add_special=True, visual_token_offset=10, image_start_token_id=1, image_end_token_id=2)
    assert [t.tolist() for t in custom] == [[1, 10, 15, 2], [1, 73, 2]]


def test_eager_and_sdpa_agree(images):
    torch.manual_seed(0)
    eager = VideoLavitVisualTokenizer._from_config(tiny_config(), attn_implementation="eager").eval()
    sdpa = VideoLavitVisualTokenizer._from_config(tiny_config(), attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.state_dict())
    assert (eager.config._attn_implementation, sdpa.config._attn_implementation) == ("eager", "sdpa")
    with torch.no_grad():
        a = eager.get_encoder_features(images)
        b = sdpa.get_encoder_features(images)
    assert torch.allclose(a, b, atol=1e-5)


def test_gradient_checkpointing_matches_plain_backward(images):
    torch.manual_seed(0)
    model = VideoLavitVisualTokenizer(tiny_config()).train()
    assert not any(p.requires_grad for p in model.vision_model.parameters())

    def grads():
        model.zero_grad()
        features = model.encode_features(images, generator=torch.Generator().manual_seed(2))
        torch.cat(features).pow(2).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.token_merger.layers)
    checkpointed = grads()
    assert any(n.startswith("token_merger.") for n in plain) and any(n.startswith("feature_projection.") for n in plain)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


# ------------------------------------------------------------------------------------------- round trips
def test_save_load_round_trip_and_auto_classes(tmp_path, model, images):
    from transformers import AutoConfig, AutoModel

    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "video_lavit_visual_tokenizer"
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VideoLavitVisualTokenizerConfig)
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, VideoLavitVisualTokenizer)
    with torch.no_grad():
        a = model.tokenize(images, generator=torch.Generator().manual_seed(9))
        b = loaded.tokenize(images, generator=torch.Generator().manual_seed(9))
        fa = model.encode_features(images, deterministic=True)
        fb = loaded.encode_features(images, deterministic=True)
    assert _ids(a) == _ids(b) and torch.equal(a.merged_features, b.merged_features)
    assert all(torch.equal(x, y) for x, y in zip(fa, fb))


def test_bfloat16_save_load(tmp_path, model, images):
    bf16 = VideoLavitVisualTokenizer(model.config).eval()
    bf16.load_state_dict(model.state_dict())
    bf16 = bf16.to(torch.bfloat16)
    bf16.save_pretrained(tmp_path)
    loaded = VideoLavitVisualTokenizer.from_pretrained(tmp_path).eval()
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    with torch.no_grad():
        a = bf16.tokenize(images, deterministic=True)
        b = loaded.tokenize(images, deterministic=True)
        ref = model.tokenize(images, deterministic=True)
        features = loaded.encode_features(images, deterministic=True)
    assert _ids(a) == _ids(b)
    assert a.selector_log_probs.dtype == torch.float32  # the selector runs in float32 on the tokenize path
    assert torch.allclose(a.selector_log_probs, ref.selector_log_probs, atol=0.1)
    assert all(f.dtype == torch.bfloat16 and f.shape[1] == 24 for f in features)


# -------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "shape, message",
    [((2, 3, 30, 32), r"\(batch, 3, 32, 32\).*\(2, 3, 30, 32\)"), ((2, 1, 32, 32), r"\(2, 1, 32, 32\)"), ((3, 32, 32), r"\(3, 32, 32\)")],
)
def test_bad_pixel_values(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model.tokenize(torch.zeros(shape))
    with pytest.raises(ValueError, match=message):
        model.encode_features(torch.zeros(shape))


def test_bad_types_and_codes(model):
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.tokenize([[0.0]])
    with pytest.raises(TypeError, match="floating-point"):
        model.tokenize(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 63\].*\[0, 64\]"):
        model.get_code_embeddings(torch.tensor([0, 64]))
    with pytest.raises(ValueError, match=r"\[-1, 3\]"):
        model.get_code_embeddings(torch.tensor([-1, 3]))
    with pytest.raises(TypeError, match="integer"):
        model.get_code_embeddings(torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"\(1, 16, 2\)"):
        model.tokenize(torch.zeros(1, 3, 32, 32), gumbel_noise=torch.zeros(1, 15, 2))


def test_bad_config():
    with pytest.raises(Exception, match="multiple of patch_size"):
        tiny_config(image_size=30)
    with pytest.raises(Exception, match="divisible by merger_num_attention_heads"):
        tiny_config(merger_num_attention_heads=5)


@pytest.mark.slow  # a fresh interpreter importing transformers takes ~30 s on the shared CI cores
def test_remote_code_export_loads_without_the_package(tmp_path, model, images):
    import os
    import subprocess
    import sys

    VideoLavitVisualTokenizerConfig.register_for_auto_class()
    VideoLavitVisualTokenizer.register_for_auto_class("AutoModel")
    try:
        model.save_pretrained(tmp_path)
    finally:  # class-level registration must not leak into other tests' saves
        VideoLavitVisualTokenizerConfig._auto_class = None
        VideoLavitVisualTokenizer._auto_class = None
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "modeling_visual_tokenizer.VideoLavitVisualTokenizer"
    )
    torch.save(images, tmp_path / "images.pt")
    script = (
        "import sys, torch\n"
        "assert 'video_lavit' not in sys.modules\n"
        "from transformers import AutoModel\n"
        f"m = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True, dtype=torch.float32).eval()\n"
        "assert m.__class__.__module__.startswith('transformers_modules'), m.__class__.__module__\n"
        f"x = torch.load({str(tmp_path / 'images.pt')!r})\n"
        "with torch.no_grad():\n"
        "    print([t.tolist() for t in m.tokenize(x, deterministic=True).token_ids])\n"
    )
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    with torch.no_grad():
        expected = [t.tolist() for t in model.tokenize(images, deterministic=True).token_ids]
    assert result.stdout.strip().splitlines()[-1] == str(expected)
