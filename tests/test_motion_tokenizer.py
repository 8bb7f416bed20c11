import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit.conversion import verify_parity
from video_lavit.conversion.convert_motion_tokenizer import (
    SFT_PREFIX,
    convert_checkpoint,
    convert_motion_tokenizer_state_dict,
)
from video_lavit.conversion.parity.common import Fixture
from video_lavit.conversion.parity.motion_tokenizer import (
    build_from_fixture,
    check_released_motion_tokenizer,
    config_from_original_kwargs,
)
from video_lavit.modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
from video_lavit.modeling.modeling_motion_tokenizer import (
    VideoLavitMotionTokenizer,
    VideoLavitMotionTokenizerOutput,
    llm_ids_to_motion_ids,
    motion_ids_to_llm_ids,
)


def tiny_config(**overrides) -> VideoLavitMotionTokenizerConfig:
    kwargs = dict(
        hidden_size=16,
        num_attention_heads=2,
        encoder_blocks_per_stage=[1, 1, 1, 1],
        decoder_blocks_per_stage=[1, 1, 1, 1],
        codebook_size=32,
        code_dim=8,
    )
    kwargs.update(overrides)
    return VideoLavitMotionTokenizerConfig(**kwargs)


def small_geometry_config(**overrides) -> VideoLavitMotionTokenizerConfig:
    """A 2-stage model on an 8x8x8 grid (2x2x2 = 8 tokens) for the training tests, which need many passes."""
    kwargs = dict(
        num_frames=8,
        height=8,
        width=8,
        encoder_blocks_per_stage=[1, 1],
        decoder_blocks_per_stage=[1, 1],
        downsample_strides=[[2, 2, 2], [2, 2, 2]],
        downsample_paddings=[[0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1]],
        upsample_scale_factors=[[2, 2, 2], [2, 2, 2]],
    )
    kwargs.update(overrides)
    return tiny_config(**kwargs)


@pytest.fixture(scope="module")
def small_motion():
    return torch.randn(4, 2, 8, 8, 8, generator=torch.Generator().manual_seed(2)) * 3


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return VideoLavitMotionTokenizer(tiny_config()).eval()


@pytest.fixture(scope="module")
def motion():
    return torch.randn(2, 2, 24, 20, 36, generator=torch.Generator().manual_seed(1)) * 3


# --------------------------------------------------------------------------------------------------- parity
def test_parity_fixture_and_released_keys(fixtures_dir, released_keys_dir):
    rc = verify_parity.main(
        [
            str(fixtures_dir),
            "--only",
            "motion_tokenizer*",
            "--released-keys",
            str(released_keys_dir / "motion_tokenizer.json"),
        ]
    )
    assert rc == 0


def test_released_sft_slice_converts(released_keys_dir):
    info = json.loads((released_keys_dir / "language_model_sft.json").read_text())
    keys = {name: tuple(shape) for name, shape in info["keys"]}
    results = check_released_motion_tokenizer(keys, info)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.slow  # full-size model on CPU: ~10 s to build, ~80 s to encode and reconstruct one clip
def test_full_size_encode_reconstruct():
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(VideoLavitMotionTokenizerConfig()).eval()
    ids = model.encode(torch.randn(1, 2, 24, 20, 36))
    assert ids.shape == (1, 135) and 0 <= int(ids.min()) and int(ids.max()) < 1024
    assert model.reconstruct(ids, size=(40, 64)).shape == (1, 2, 24, 40, 64)


# --------------------------------------------------------------------------------------------------- config
def test_default_config_is_the_released_model():
    config = VideoLavitMotionTokenizerConfig()
    assert config.token_grid_size == (3, 5, 9)
    assert config.num_motion_tokens == 135
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (512, 8, 2048)
    assert (config.codebook_size, config.code_dim, config.motion_scale_factor, config.ema_decay) == (1024, 32, 10.0, 0.995)
    with torch.device("meta"):
        model = VideoLavitMotionTokenizer(config)
    assert sum(p.numel() for p in model.parameters()) == 158_476_322


def test_config_round_trip_and_auto(tmp_path):
    strides = [[1, 2, 2], [2, 1, 1], [2, 1, 1], [1, 2, 2]]
    config = tiny_config(
        num_frames=12,
        downsample_strides=strides,
        downsample_paddings=[[0, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 0, 1], [0, 1, 0, 1, 1, 1]],
        upsample_scale_factors=[[2, 2, 2], [2, 1, 1], [1, 1, 1], [1, 2, 2]],
    )
    assert config.token_grid_size == (3, 5, 9)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, VideoLavitMotionTokenizerConfig)
    assert loaded.num_frames == 12 and loaded.num_motion_tokens == 135
    assert [list(s) for s in loaded.downsample_strides] == strides
    model = VideoLavitMotionTokenizer(loaded).eval()
    ids = model.encode(torch.randn(1, 2, 12, 20, 36))
    assert ids.shape == (1, 135)
    assert model.decode(ids).shape == (1, 2, 12, 20, 36)


def test_config_rejects_inconsistent_schedule():
    with pytest.raises(Exception, match="upsample_scale_factors"):
        tiny_config(num_frames=12)
    with pytest.raises(Exception, match="divisible"):
        tiny_config(hidden_size=18, num_attention_heads=4)


# ------------------------------------------------------------------------------------------- encode/decode
def test_encode_decode_shapes_and_ranges(tiny_model, motion):
    ids = tiny_model.encode(motion)
    assert ids.shape == (2, 135) and ids.dtype == torch.long
    assert int(ids.min()) >= 0 and int(ids.max()) < 32
    decoded = tiny_model.decode(ids)
    assert decoded.shape == (2, 2, 24, 20, 36)
    out = tiny_model.quantize(motion)
    assert out.quantized.shape == (2, 3, 5, 9, 8)
    assert out.last_hidden_state.shape == (2, 3, 5, 9, 16)
    # (t, h, w) row-major: id k of the flat sequence is grid cell (k // 45, k // 9 % 5, k % 9)
    assert torch.equal(out.token_ids.reshape(2, 3, 5, 9)[:, 1, 2, 3], ids[:, 1 * 45 + 2 * 9 + 3])
    torch.testing.assert_close(decoded, tiny_model.decode_latents(out.quantized), atol=0, rtol=0)
    # codes are the nearest codebook rows of the l2-normalised latents
    z = F.normalize(out.latents, dim=-1).reshape(-1, 8)
    manual = torch.cdist(z, tiny_model.quantizer.embedding.weight).argmin(-1)
    assert (manual == ids.reshape(-1)).float().mean() > 0.99


def test_reconstruct_resizes_and_rescales(tiny_model, motion):
    ids = tiny_model.encode(motion)
    decoded = tiny_model.decode(ids)
    out = tiny_model.reconstruct(ids, size=(8, 12))
    assert out.shape == (2, 2, 24, 8, 12)
    frame = F.interpolate(decoded[:, :, 5], size=(8, 12), mode="bicubic", align_corners=False) / 10.0
    torch.testing.assert_close(out[:, :, 5], frame)
    torch.testing.assert_close(tiny_model.reconstruct(ids), decoded / 10.0)
    torch.testing.assert_close(tiny_model.reconstruct_motion(motion, size=(8, 12)), out)


def test_batch_independence(tiny_model, motion):
    ids = tiny_model.encode(motion)
    assert torch.equal(tiny_model.encode(motion[1:]), ids[1:])


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "shape", [(1, 2, 24, 20, 35), (1, 2, 23, 20, 36), (1, 3, 24, 20, 36), (2, 24, 20, 36)]
)
def test_bad_motion_shape(tiny_model, shape):
    with pytest.raises(ValueError, match=r"\(batch, 2, 24, 20, 36\).*got"):
        tiny_model.encode(torch.zeros(shape))


def test_bad_motion_dtype(tiny_model):
    with pytest.raises(TypeError, match="floating-point"):
        tiny_model.encode(torch.zeros(1, 2, 24, 20, 36, dtype=torch.long))


def test_bad_token_ids(tiny_model):
    with pytest.raises(ValueError, match=r"\(batch, 135\).*\(1, 134\)"):
        tiny_model.decode(torch.zeros(1, 134, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 31\].*32"):
        tiny_model.decode(torch.full((1, 135), 32))
    with pytest.raises(ValueError, match=r"\[0, 31\].*-1"):
        tiny_model.reconstruct(torch.full((1, 135), -1), size=(4, 4))
    with pytest.raises(TypeError, match="integer"):
        tiny_model.decode(torch.zeros(1, 135))
    with pytest.raises(ValueError, match="size"):
        tiny_model.reconstruct(torch.zeros(1, 135, dtype=torch.long), size=(0, 4))


def test_llm_id_helpers():
    codes = torch.tensor([[0, 5, 1023]])
    assert motion_ids_to_llm_ids(codes).tolist() == [[48386, 48388, 48393, 49411, 48387]]
    assert motion_ids_to_llm_ids(codes, offset=100, add_markers=False).tolist() == [[100, 105, 1123]]
    assert torch.equal(llm_ids_to_motion_ids(motion_ids_to_llm_ids(codes, add_markers=False), 1024, 3), codes)
    with pytest.raises(ValueError, match="< 1000"):
        motion_ids_to_llm_ids(codes, codebook_size=1000)
    with pytest.raises(ValueError, match=r"\(batch, 135\)"):
        llm_ids_to_motion_ids(torch.full((1, 134), 48388), 1024, 135)
    with pytest.raises(ValueError, match=r"\[48388, 49411\]"):
        llm_ids_to_motion_ids(torch.full((1, 3), 48387), 1024, 3)


# ---------------------------------------------------------------------------------------- save/load, dtype
def test_save_load_round_trip(tiny_model, motion, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, VideoLavitMotionTokenizer)
    ids = tiny_model.encode(motion)
    assert torch.equal(loaded.encode(motion), ids)
    assert torch.equal(loaded.decode(ids), tiny_model.decode(ids))
    assert torch.equal(loaded.quantizer.ema_embedding_sum, tiny_model.quantizer.ema_embedding_sum)


def test_checkpoint_without_ema_buffers_derives_them(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights = {k: v for k, v in weights.items() if "ema_" not in k}
    weights["quantizer.embedding.weight"] = weights["quantizer.embedding.weight"] * 0.5
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = VideoLavitMotionTokenizer.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.quantizer.embedding.weight, tiny_model.quantizer.embedding.weight * 0.5)
    torch.testing.assert_close(loaded.quantizer.ema_embedding_sum, loaded.quantizer.embedding.weight)
    torch.testing.assert_close(loaded.quantizer.ema_cluster_size, torch.ones(32))


@pytest.mark.slow  # a fresh interpreter importing torch + transformers takes ~20 s on a loaded machine
def test_remote_code_round_trip(tiny_model, motion, tmp_path):
    try:
        VideoLavitMotionTokenizerConfig.register_for_auto_class()
        VideoLavitMotionTokenizer.register_for_auto_class("AutoModel")
        tiny_model.save_pretrained(tmp_path)
    finally:
        VideoLavitMotionTokenizerConfig._auto_class = None
        VideoLavitMotionTokenizer._auto_class = None
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_motion_tokenizer.VideoLavitMotionTokenizer"
    torch.save((motion[:1], tiny_model.encode(motion[:1])), tmp_path / "io.pt")
    code = (
        "import torch\nfrom transformers import AutoModel\n"
        f"m = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()\n"
        f"x, ids = torch.load({str(tmp_path / 'io.pt')!r})\n"
        "assert 'transformers_modules' in type(m).__module__, type(m).__module__\n"
        "assert torch.equal(m.encode(x), ids)\nprint('OK')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


def test_bf16_loading(tiny_model, motion, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    model = VideoLavitMotionTokenizer.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert model.dtype == torch.bfloat16
    ids = model.encode(motion)  # float32 input is cast to the model dtype
    assert (ids == tiny_model.encode(motion)).float().mean() > 0.8
    out = model.reconstruct(ids, size=(10, 18))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 2, 24, 10, 18)
    torch.testing.assert_close(out.float(), tiny_model.reconstruct(ids, size=(10, 18)), atol=0.05, rtol=0.05)


# -------------------------------------------------------------------------------------------- training
def test_training_forward_updates_ema_codebook(small_motion):
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(small_geometry_config()).train()
    before = model.quantizer.embedding.weight.detach().clone()
    out = model(small_motion)
    assert isinstance(out, VideoLavitMotionTokenizerOutput)
    assert torch.isfinite(out.loss) and out.loss > 0
    expected = out.reconstruction_loss + 0.25 * out.commitment_loss
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.reconstruction_loss, F.mse_loss(out.reconstruction, small_motion))
    after = model.quantizer.embedding.weight.detach()
    used = torch.unique(out.token_ids)
    assert not torch.allclose(after[used], before[used])
    torch.testing.assert_close(after.norm(dim=-1), torch.ones(32))
    out.loss.backward()
    assert model.quantizer.embedding.weight.grad is None  # owned by the EMA rule
    assert model.encoder.in_proj.weight.grad.abs().sum() > 0  # straight-through reaches the encoder

    model.eval()
    frozen = model.quantizer.embedding.weight.detach().clone()
    model(small_motion)
    assert torch.equal(model.quantizer.embedding.weight, frozen)


def test_input_clip_value_clamps_encoder_input_and_training_target(small_motion):
    # small_motion is N(0, 9): many values lie beyond the clip, so clamping changes the input for real.
    assert VideoLavitMotionTokenizerConfig().input_clip_value is None
    assert (small_motion.abs() > 2.0).float().mean() > 0.3
    clipped_input = small_motion.clamp(-2.0, 2.0)

    torch.manual_seed(0)
    plain = VideoLavitMotionTokenizer(small_geometry_config()).eval()
    clipping = VideoLavitMotionTokenizer(small_geometry_config(input_clip_value=2.0)).eval()
    clipping.load_state_dict(plain.state_dict())

    # unset: no clamping, the raw and the clamped tensor are different inputs
    raw_latents = plain.quantize(small_motion).latents
    assert not torch.allclose(raw_latents, plain.quantize(clipped_input).latents)
    # set: encoding the raw tensor is encoding the clamped tensor (same ids, same latents)
    out = clipping.quantize(small_motion)
    torch.testing.assert_close(out.latents, plain.quantize(clipped_input).latents)
    assert torch.equal(out.token_ids, plain.encode(clipped_input))
    assert torch.equal(clipping.encode(small_motion), clipping.encode(clipped_input))
    # values inside the clip are untouched
    inside = small_motion.clamp(-1.5, 1.5)
    torch.testing.assert_close(clipping.quantize(inside).latents, plain.quantize(inside).latents)

    # training: the reconstruction target is the clamped motion too
    train_out = clipping(small_motion)
    torch.testing.assert_close(train_out.reconstruction_loss, F.mse_loss(train_out.reconstruction, clipped_input))
    assert torch.equal(train_out.token_ids, out.token_ids)

    # @strict wraps the validator's ValueError in its own error type
    with pytest.raises(Exception, match="input_clip_value must be a positive number"):
        small_geometry_config(input_clip_value=0.0)


def test_dead_code_restart(small_motion):
    assert VideoLavitMotionTokenizerConfig().ema_dead_code_threshold == 0.0  # released training: no restarts
    torch.manual_seed(0)
    plain = VideoLavitMotionTokenizer(small_geometry_config()).train()
    torch.manual_seed(0)
    restarting = VideoLavitMotionTokenizer(small_geometry_config(ema_dead_code_threshold=0.999)).train()
    restarting.load_state_dict(plain.state_dict())
    before = plain.quantizer.embedding.weight.detach().clone()

    out = plain(small_motion)
    used = torch.unique(out.token_ids)
    unused = torch.ones(32, dtype=torch.bool)
    unused[used] = False
    assert unused.any()
    # without restarts an unused code keeps its direction (only the smoothing rescales it, then it is renormalised)
    torch.testing.assert_close(plain.quantizer.embedding.weight[unused], before[unused])

    torch.manual_seed(1)
    restart_out = restarting(small_motion)
    assert torch.equal(restart_out.token_ids, out.token_ids)  # same assignment; restarts happen after it
    weight = restarting.quantizer.embedding.weight.detach()
    latents = F.normalize(restarting.quantize(small_motion).latents, dim=-1).reshape(-1, 8)
    # an unused code decays from 1 to 0.995 < 0.999: each one now sits exactly on one of this batch's latents ...
    for code in torch.nonzero(unused).flatten():
        assert (weight[code][None] - latents).abs().amax(dim=1).min() < 1e-5
        assert restarting.quantizer.ema_cluster_size[code] == 1.0
    # ... the used codes follow the plain EMA rule
    torch.testing.assert_close(weight[used], plain.quantizer.embedding.weight[used])
    torch.testing.assert_close(weight.norm(dim=-1), torch.ones(32))

    with pytest.raises(Exception, match="ema_dead_code_threshold must be >= 0"):
        small_geometry_config(ema_dead_code_threshold=-1.0)


def test_gradient_codebook_without_ema(small_motion):
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(small_geometry_config(use_ema_codebook=False)).train()
    out = model(small_motion)
    out.loss.backward()
    assert model.quantizer.embedding.weight.grad.abs().sum() > 0


def test_activation_checkpointing_matches(small_motion):
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(small_geometry_config(use_ema_codebook=False)).train()
    x = small_motion[:1]
    model(x).loss.backward()
    reference = model.encoder.layers[0].spatial_attention.qkv.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.encoder.layers)
    model(x).loss.backward()
    torch.testing.assert_close(model.encoder.layers[0].spatial_attention.qkv.weight.grad, reference)


def test_few_training_steps_reduce_loss():
    torch.manual_seed(0)
    model = VideoLavitMotionTokenizer(small_geometry_config()).train()
    data = torch.randn(2, 2, 8, 8, 8, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(10):
        loss = model(data).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------- conversion
def _fixture_original(fixtures_dir):
    fixture = Fixture.load(fixtures_dir / "motion_tokenizer.json")
    io = fixture.tensors()
    config = config_from_original_kwargs(
        fixture.spec["constructor_kwargs"],
        fixture.spec["fullsize"]["MotionTransformerTokenizer"]["fixed_in_code"],
        tuple(io["input.motion"].shape),
    )
    return fixture, io, config


def test_conversion_rejects_unmapped_and_missing(fixtures_dir):
    fixture, _, config = _fixture_original(fixtures_dir)
    weights = dict(fixture.weights())
    with pytest.raises(ValueError, match="encoder.extra_thing"):
        convert_motion_tokenizer_state_dict({**weights, "encoder.extra_thing": torch.zeros(1)}, "", config)
    weights.pop("decoder.blocks.3.mlp.fc1.bias")
    with pytest.raises(ValueError, match=r"decoder\.layers\.3\.mlp\.fc1\.bias"):
        convert_motion_tokenizer_state_dict(weights, "", config)


def test_conversion_on_meta_tensors(fixtures_dir):
    fixture, _, config = _fixture_original(fixtures_dir)
    meta = {k: torch.empty(v.shape, device="meta") for k, v in fixture.weights().items()}
    converted = convert_motion_tokenizer_state_dict(meta, "", config)
    assert all(v.is_meta for v in converted.values())
    assert converted["quantizer.ema_embedding_sum"].shape == (config.codebook_size, config.code_dim)


def test_convert_bin_and_sharded_sft(fixtures_dir, tmp_path):
    fixture, io, config = _fixture_original(fixtures_dir)
    weights = fixture.weights()
    torch.save(weights, tmp_path / "motion_tokenizer.bin")
    model = convert_checkpoint(tmp_path / "motion_tokenizer.bin", tmp_path / "out", config=config)
    loaded = VideoLavitMotionTokenizer.from_pretrained(tmp_path / "out").eval()
    assert torch.equal(loaded.encode(io["input.motion"]), io["output.tokens"])
    assert model.config.num_motion_tokens == 135

    sft = tmp_path / "sft"
    sft.mkdir()
    keys = sorted(weights)
    shards = {"pytorch_model-00001-of-00002.bin": keys[::2], "pytorch_model-00002-of-00002.bin": keys[1::2]}
    weight_map = {"model.layers.0.mlp.up_proj.weight": "pytorch_model-00001-of-00002.bin"}
    for shard, names in shards.items():
        part = {SFT_PREFIX + k: weights[k].to(torch.bfloat16) for k in names}
        if shard.startswith("pytorch_model-00001"):
            part["model.layers.0.mlp.up_proj.weight"] = torch.zeros(2, 2)
        torch.save(part, sft / shard)
        weight_map.update({SFT_PREFIX + k: shard for k in names})
    (sft / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    convert_checkpoint(sft, tmp_path / "out_sft", prefix=SFT_PREFIX, config=config)
    loaded = VideoLavitMotionTokenizer.from_pretrained(tmp_path / "out_sft")
    assert loaded.dtype == torch.bfloat16
    torch.testing.assert_close(
        loaded.quantizer.embedding.weight.float(), weights["quantize.embedding.weight"], atol=1e-2, rtol=1e-2
    )
