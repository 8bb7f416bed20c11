"""Video detokenizer modules (motion condition encoder, motion-conditioned 3D UNet), conversion and parity."""

import json

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from safetensors.torch import load_file

from video_lavit.conversion import verify_parity
from video_lavit.conversion.convert_video_detokenizer import (
    ConversionError,
    _shapes,
    build_detokenizer_modules,
    convert_video_detokenizer,
    split_video_detokenizer_state_dict,
)
from video_lavit.conversion.parity.video_detokenizer import check_released_video_detokenizer
from video_lavit.modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from video_lavit.modeling.unet_video_lavit import (
    VideoLavitTransformerSpatioTemporalModel,
    VideoLavitUNetSpatioTemporalConditionModel,
    motion_context_per_position,
)

TINY_UNET = dict(
    sample_size=None,
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    block_out_channels=(32, 64),
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24,
    layers_per_block=1,
    cross_attention_dim=16,
    num_attention_heads=(2, 4),
    num_frames=3,
)
TINY_ENCODER = dict(out_channels=16, hidden_size=16, num_attention_heads=2, num_layers=2)


def _randomise(*modules):
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.copy_(torch.randn_like(p) * 0.1)


def test_parity_fixtures_and_released_keys(fixtures_dir, released_keys_dir):
    argv = [str(fixtures_dir), "--only", "motion_condition", "--only", "unet3d", "--only", "video_detok_sampling",
            "--released-keys", str(released_keys_dir / "video_detokenizer.json")]
    assert verify_parity.main(argv) == 0


def test_released_defaults_match_the_checkpoint_sizes():
    unet, encoder = build_detokenizer_modules(meta=True)
    assert sum(p.numel() for p in unet.parameters()) == 1_524_628_842
    assert sum(p.numel() for p in encoder.parameters()) == 51_095_040
    assert unet.conv_in.weight.shape == (320, 10, 3, 3) and unet.config.cross_attention_dim == 1024
    sites = [m for m in unet.modules() if isinstance(m, VideoLavitTransformerSpatioTemporalModel)]
    assert len(sites) == 16  # every spatio-temporal transformer reads the motion context
    assert encoder.config.grid_size == (16, 16) and encoder.config.out_channels == 1024


def test_released_key_check_fails_on_a_wrong_checkpoint(released_keys_dir):
    info = json.loads((released_keys_dir / "video_detokenizer.json").read_text())
    keys = {k: tuple(s) for k, s in info["keys"]}
    assert all(r.passed for r in check_released_video_detokenizer(keys, info))
    keys["unet.conv_in.weight"] = (320, 8, 3, 3)  # an SVD-xt UNet
    failed = [r for r in check_released_video_detokenizer(keys, info) if not r.passed]
    assert failed and "conv_in.weight" in failed[0].detail


def test_motion_context_per_position_is_nearest_resampling():
    batch, frames, grid, dim = 1, 2, 4, 3
    context = torch.arange(batch * frames * grid * grid * dim, dtype=torch.float32).reshape(batch * frames, grid * grid, dim)
    out = motion_context_per_position(context, batch, frames, 8, 4)  # rows upsampled x2, columns kept
    assert out.shape == (batch * 8 * 4, frames, dim)
    for y in range(8):
        for x in range(4):
            for t in range(frames):
                assert torch.equal(out[y * 4 + x, t], context[t, (y // 2) * grid + x])
    with pytest.raises(ValueError, match="square grid"):
        motion_context_per_position(torch.zeros(2, 15, 3), 1, 2, 4, 4)


def test_unet_matches_stock_svd_when_the_motion_context_is_uniform():
    """With identical motion tokens everywhere, per-frame/per-position attention equals SVD's broadcast context,
    so our forward must reproduce the stock UNet exactly (same weights, strict load)."""
    torch.manual_seed(0)
    ours = VideoLavitUNetSpatioTemporalConditionModel(**TINY_UNET).eval()
    _randomise(ours)
    stock = UNetSpatioTemporalConditionModel(**{**TINY_UNET, "in_channels": 10}).eval()
    stock.load_state_dict(ours.state_dict(), strict=True)
    sample = torch.randn(2, 3, 10, 8, 12)
    token = torch.randn(2, 1, 1, 16)
    time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2)
    with torch.no_grad():
        a = ours(sample, 0.4, token.expand(2, 3, 256, 16), time_ids).sample
        b = stock(sample, 0.4, token[:, 0], time_ids).sample
        c = ours(sample, 0.4, torch.randn(2, 3, 256, 16), time_ids).sample
    assert a.shape == (2, 3, 4, 8, 12)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (a - c).abs().max() > 1e-3  # the motion context matters
    with pytest.raises(ValueError, match="per-frame motion context"):
        ours(sample, 0.4, torch.randn(2, 256, 16), time_ids)


def test_motion_encoder_shapes_save_load_and_errors(tmp_path):
    torch.manual_seed(0)
    encoder = VideoLavitMotionConditionEncoder(**TINY_ENCODER).eval()
    _randomise(encoder)
    motion = torch.randn(2, 2, 3, 5, 7)
    with torch.no_grad():
        out = encoder(motion).motion_hidden_states
    assert out.shape == (2, 3, 256, 16)
    # frames are not independent: temporal attention mixes them
    with torch.no_grad():
        changed = encoder(torch.cat([motion[:, :, :1] + 1, motion[:, :, 1:]], 2)).motion_hidden_states
    assert (changed[:, 2] - out[:, 2]).abs().max() > 1e-4
    encoder.save_pretrained(tmp_path)
    loaded = VideoLavitMotionConditionEncoder.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(motion).motion_hidden_states, out)
    with pytest.raises(ValueError, match=r"\[batch, 2, frames, height, width\]"):
        encoder(torch.randn(2, 3, 3, 5, 7))


def _original_state_dict(unet, encoder, unet_prefix="unet."):
    state = {unet_prefix + k: v for k, v in unet.state_dict().items()}
    state.update({"motion_encoder." + k: v for k, v in encoder.state_dict().items()})
    return state


def test_conversion_accepts_both_unet_layouts_and_lists_problems():
    unet, encoder = build_detokenizer_modules(TINY_UNET, TINY_ENCODER)
    shapes = (_shapes(unet), _shapes(encoder))
    for prefix in ("unet.", ""):
        u, e = split_video_detokenizer_state_dict(_original_state_dict(unet, encoder, prefix), *shapes)
        assert set(u) == set(shapes[0]) and set(e) == set(shapes[1])
    state = _original_state_dict(unet, encoder)
    no_encoder = {k: v for k, v in state.items() if not k.startswith("motion_encoder.")}
    with pytest.raises(ConversionError, match="motion encoder parameters missing"):
        split_video_detokenizer_state_dict(no_encoder, *shapes)
    with pytest.raises(ConversionError, match="unmapped checkpoint keys: vae.decoder.conv_in.weight"):
        split_video_detokenizer_state_dict({**state, "vae.decoder.conv_in.weight": torch.zeros(1)}, *shapes)
    with pytest.raises(ConversionError, match="both with and without"):
        split_video_detokenizer_state_dict({**state, "conv_in.bias": state["unet.conv_in.bias"]}, *shapes)
    with pytest.raises(ConversionError, match=r"UNet parameters missing.*conv_out.bias"):
        split_video_detokenizer_state_dict({k: v for k, v in state.items() if k != "unet.conv_out.bias"}, *shapes)
    with pytest.raises(ConversionError, match="conv_in.weight: checkpoint"):
        split_video_detokenizer_state_dict({**state, "unet.conv_in.weight": torch.zeros(32, 8, 3, 3)}, *shapes)
    meta = {k: torch.empty(v.shape, device="meta") for k, v in state.items()}
    u, _ = split_video_detokenizer_state_dict(meta, *shapes)
    assert u["conv_in.weight"].is_meta


def test_convert_released_layout_folder_to_pipeline(tmp_path):
    """A miniature of the released folder (original unet config, bf16 .bin with unprefixed UNet keys + motion
    encoder, vae folder) converts to a pipeline folder that loads back with identical weights."""
    from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

    torch.manual_seed(0)
    unet, encoder = build_detokenizer_modules(TINY_UNET, TINY_ENCODER)
    _randomise(unet, encoder)
    detok = tmp_path / "release" / "video_detokenizer"
    (detok / "unet").mkdir(parents=True)
    original_config = {"_class_name": "UNetSpatioTemporalConditionModel", "_diffusers_version": "0.25.1", "in_channels": 10, **TINY_UNET}
    (detok / "unet" / "config.json").write_text(json.dumps(original_config))
    state = {k: v.to(torch.bfloat16) for k, v in _original_state_dict(unet, encoder, unet_prefix="").items()}
    torch.save(state, detok / "unet" / "diffusion_pytorch_model.bin")
    AutoencoderKLTemporalDecoder(block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                                 layers_per_block=1).save_pretrained(detok / "vae")

    convert_video_detokenizer(tmp_path / "release", tmp_path / "out", motion_encoder_config=TINY_ENCODER)
    weights = load_file(str(tmp_path / "out" / "motion_encoder" / "diffusion_pytorch_model.safetensors"))
    torch.testing.assert_close(weights["pos_embed"], state["motion_encoder.pos_embed"].float())
    pipe = VideoLavitReconstructionPipeline.from_pretrained(tmp_path / "out")
    torch.testing.assert_close(pipe.unet.conv_in.weight, state["conv_in.weight"].float())
    assert pipe.scheduler.config.prediction_type == "v_prediction" and pipe.scheduler.config.use_karras_sigmas

    torch.save({k: v for k, v in state.items() if not k.startswith("motion_encoder.")}, tmp_path / "video_3d_unet.bin")
    with pytest.raises(ConversionError, match="motion encoder"):
        convert_video_detokenizer(tmp_path / "release", tmp_path / "out2", weights=tmp_path / "video_3d_unet.bin",
                                  motion_encoder_config=TINY_ENCODER)


def test_fresh_motion_encoder_knows_where_a_patch_is():
    # built from scratch, a uniform motion field must still give position-dependent features (zero position
    # embeddings would make every patch of a uniform field alike)
    torch.manual_seed(0)
    encoder = VideoLavitMotionConditionEncoder(**TINY_ENCODER).eval()
    assert 0.005 < float(encoder.pos_embed.detach().std()) < 0.05
    with torch.no_grad():
        out = encoder(torch.ones(1, 2, 3, 4, 4)).motion_hidden_states[0, 0]  # [tokens, dim]
    assert torch.cdist(out, out).fill_diagonal_(1.0).min() > 1e-5
