"""VideoLavitKeyframeDecoder: parity with the original HighresVQDecoder, input forms, errors, conversion."""

import json

import pytest
import torch

from video_lavit.conversion import verify_parity
from video_lavit.conversion.convert_keyframe_decoder import (
    config_from_original_state_dict,
    convert_keyframe_decoder_state_dict,
    load_converted_state_dict,
    load_original_keyframe_decoder,
)
from video_lavit.conversion.parity.common import Fixture
from video_lavit.conversion.parity.keyframe_decoder import _config_from_fixture, check_keyframe_decoder
from video_lavit.modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder

TINY = dict(
    codebook_size=50, code_dim=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
    num_queries=16, feature_dim=24, prompt_embed_dims=(12, 20), pooled_embed_dim=20, pooler_num_heads=2,
)


def tiny_decoder(seed=0):
    torch.manual_seed(seed)
    model = VideoLavitKeyframeDecoder(**TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def test_parity_fixtures_and_released_keys(fixtures_dir, released_keys_dir):
    argv = [str(fixtures_dir), "--only", "keyframe_decoder", "--only", "visual_tokenizer_decoder",
            "--released-keys", str(released_keys_dir / "visual_tokenizer__highres_tokenizer_decoder.json")]
    assert verify_parity.main(argv) == 0


def test_parity_check_detects_a_wrong_weight(fixtures_dir, monkeypatch):
    fixture = Fixture.load(fixtures_dir / "keyframe_decoder.json")
    weights = fixture.weights()
    weights["unet_attnpool.positional_embedding"] = weights["unet_attnpool.positional_embedding"] + 0.01
    monkeypatch.setattr(fixture, "weights", lambda filename=None: weights)
    results = {r.name: r.passed for r in check_keyframe_decoder(fixture, None)}
    assert results == {"output.prompt_embeds": True, "output.pooled_prompt_embeds": False}


def test_default_config_is_released_size():
    with torch.device("meta"):
        model = VideoLavitKeyframeDecoder()
    assert sum(p.numel() for p in model.parameters()) == 414_002_304 + 16384 * 32
    # prompt_embeds [B, 256, 768 + 1280], pooled [B, 1280]: the SDXL UNet's context and text_embeds widths.
    assert model.query_embeddings.shape == (1, 256, 1408)
    assert (model.prompt_proj_1.out_features, model.prompt_proj_2.out_features) == (768, 1280)
    assert model.pooler.out_proj.out_features == 1280 and model.pooler.num_heads == 16
    assert model.layers[0].mlp.fc1.out_features == int(1408 * 4.3637)
    assert model.config.codebook_size == 16384 and model.config.code_dim == 32


def test_batching_and_padding_do_not_change_an_image():
    model = tiny_decoder()
    short, long = torch.randint(0, 50, (5,)), torch.randint(0, 50, (13,))
    with torch.no_grad():
        alone = model(codes=[short])
        batched = model(codes=[short, long])
        padded = torch.zeros(2, 16, dtype=torch.long)
        padded[0, :5], padded[1, :13] = short, long
        mask = torch.zeros(2, 16, dtype=torch.long)
        mask[0, :5], mask[1, :13] = 1, 1
        from_padded = model(codes=padded, attention_mask=mask)
    torch.testing.assert_close(batched.prompt_embeds[0], alone.prompt_embeds[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.pooled_prompt_embeds[0], alone.pooled_prompt_embeds[0], atol=1e-5, rtol=1e-5)
    # Padding beyond the longest sequence only adds masked keys (-10000 logits): the result is unchanged.
    torch.testing.assert_close(from_padded.prompt_embeds, batched.prompt_embeds, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batched.prompt_embeds[0], batched.prompt_embeds[1])
    assert tuple(batched.prompt_embeds.shape) == (2, 16, 32)
    assert tuple(batched.pooled_prompt_embeds.shape) == (2, 20)


def test_code_order_matters_and_codes_equal_codebook_rows():
    model = tiny_decoder()
    codes = torch.tensor([3, 7, 11, 42])
    with torch.no_grad():
        by_code = model(codes=[codes])
        by_vector = model(code_embeddings=[model.codebook.weight[codes]])
        reversed_ = model(codes=[codes.flip(0)])
    torch.testing.assert_close(by_code.prompt_embeds, by_vector.prompt_embeds)
    # Positions index the order of the kept tokens, so reordering the codes changes the conditioning.
    assert not torch.allclose(by_code.prompt_embeds, reversed_.prompt_embeds, atol=1e-4)


def test_save_and_reload_round_trip(tmp_path):
    model = tiny_decoder()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["codebook_size"] == 50
    reloaded = VideoLavitKeyframeDecoder.from_pretrained(tmp_path).eval()
    codes = [torch.tensor([1, 2, 3]), torch.tensor([4, 5])]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(codes=codes).prompt_embeds, model(codes=codes).prompt_embeds)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(codes=[torch.tensor([0, 50])]), ValueError, r"\[0, 50\).*\[0, 50\]"),
        (dict(codes=[torch.tensor([-1, 3])]), ValueError, r"\[0, 50\)"),
        (dict(codes=[torch.tensor([1]), torch.tensor([], dtype=torch.long)]), ValueError, "image 1 has no visual codes"),
        (dict(codes=[torch.zeros(17, dtype=torch.long)]), ValueError, "17 visual codes; at most 16"),
        (dict(codes=[]), ValueError, "empty list"),
        (dict(codes=[torch.tensor([1.0, 2.0])]), TypeError, "integer"),
        (dict(code_embeddings=[torch.zeros(3, 7)]), ValueError, "width 7, expected code_dim=8"),
        (dict(codes=torch.ones(2, 4, dtype=torch.long), attention_mask=torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0]])),
         ValueError, "right-padded"),
        (dict(codes=torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 3)), ValueError, r"\(2, 3\) != \(2, 4\)"),
        (dict(codes=torch.ones(2, 4, 1, dtype=torch.long)), ValueError, r"\[B, N\]"),
        (dict(), ValueError, "exactly one"),
        (dict(codes=[torch.tensor([1])], code_embeddings=[torch.zeros(1, 8)]), ValueError, "exactly one"),
    ],
)
def test_bad_input_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny_decoder()(**kwargs)


def test_conversion_rejects_unmapped_and_missing_keys(fixtures_dir):
    fixture = Fixture.load(fixtures_dir / "keyframe_decoder.json")
    original = fixture.weights()
    codebook = torch.zeros(4, original["in_proj.weight"].shape[1])
    with pytest.raises(ValueError, match=r"not mapped: \['blocks.0.extra.weight', 'mystery'\]"):
        convert_keyframe_decoder_state_dict({**original, "mystery": torch.zeros(1), "blocks.0.extra.weight": torch.zeros(1)}, codebook)
    config = _config_from_fixture(fixture.spec, codebook_size=4)
    model = VideoLavitKeyframeDecoder(**config)
    incomplete = {k: v for k, v in original.items() if k != "unet_proj_2.bias"}
    with pytest.raises(ValueError, match=r"missing \['prompt_proj_2.bias'\]"):
        load_converted_state_dict(model, convert_keyframe_decoder_state_dict(incomplete, codebook))


def test_conversion_works_on_meta_tensors(fixtures_dir):
    fixture = Fixture.load(fixtures_dir / "keyframe_decoder.json")
    meta = {k: torch.empty(v.shape, device="meta") for k, v in fixture.weights().items()}
    converted = convert_keyframe_decoder_state_dict(meta, torch.empty(4, 8, device="meta"), dtype=torch.bfloat16)
    assert all(t.is_meta and t.dtype == torch.bfloat16 for t in converted.values())
    assert converted["pooler.out_proj.weight"].shape == fixture.weights()["unet_attnpool.c_proj.weight"].shape


def test_convert_from_original_checkpoint_folder(fixtures_dir, tmp_path):
    """The two original .bin files -> our decoder, with sizes inferred from the shapes; matches the fixture."""
    fixture = Fixture.load(fixtures_dir / "visual_tokenizer_decoder.json")
    codebook = fixture.weights("visual_tokenizer.safetensors")["quantize.embedding.weight"]
    (tmp_path / "visual_tokenizer").mkdir()
    torch.save(fixture.weights(), tmp_path / "visual_tokenizer" / "highres_tokenizer_decoder.bin")
    torch.save({"quantize.embedding.weight": codebook, "other": torch.zeros(2)}, tmp_path / "visual_tokenizer" / "tokenizer_encoder.bin")

    heads = fixture.spec["constructor_kwargs"]["num_heads"]
    inferred = config_from_original_state_dict(fixture.weights(), codebook, num_attention_heads=heads)
    assert inferred == {**_config_from_fixture(fixture.spec, codebook.shape[0]), "layer_norm_eps": 1e-5}

    model = load_original_keyframe_decoder(tmp_path, num_attention_heads=heads).eval()
    # Head counts are not in the weights; the released default (16) gives a different result here.
    wrong_heads = load_original_keyframe_decoder(tmp_path).eval()
    io = fixture.tensors()
    ids = list(io["input.image_token_ids"].split(io["input.image_token_nums_with_special"].tolist()))
    codes = [i[i >= 32002] - 32002 for i in ids]
    with torch.no_grad():
        out = model(codes=codes)
        wrong = wrong_heads(codes=codes)
    torch.testing.assert_close(out.prompt_embeds, io["output.prompt_embeds"], atol=3e-4, rtol=1e-4)
    torch.testing.assert_close(out.pooled_prompt_embeds, io["output.pooled_prompt_embeds"], atol=3e-4, rtol=1e-4)
    assert not torch.allclose(wrong.prompt_embeds, io["output.prompt_embeds"], atol=1e-2)


def test_id_fixture_without_tokenizer_weights_falls_back_to_code_vectors(fixtures_dir, tmp_path):
    import shutil

    from video_lavit.conversion.parity.keyframe_decoder import check_visual_tokenizer_decoder

    for suffix in (".json", ".safetensors", "_io.safetensors"):
        shutil.copy(fixtures_dir / f"visual_tokenizer_decoder{suffix}", tmp_path)
    results = check_visual_tokenizer_decoder(Fixture.load(tmp_path / "visual_tokenizer_decoder.json"), None)
    names = {r.name for r in results}
    assert all(r.passed for r in results)
    assert "codebook lookup" not in names and {"output.prompt_embeds", "intermediate.blocks.1"} <= names


def test_fresh_decoder_gives_each_query_its_own_output():
    # built from scratch (no checkpoint), the learned queries and positions must not start equal: zero queries stay
    # identical under training and every prompt token would then read the same bag of codes
    torch.manual_seed(0)
    model = VideoLavitKeyframeDecoder(**TINY).eval()
    for embedding in (model.query_embeddings, model.code_position_embedding, model.pooler.position_embedding):
        assert 0.005 < float(embedding.detach().std()) < 0.05
    out = model(codes=torch.randint(0, TINY["codebook_size"], (1, 8)))
    tokens = out.prompt_embeds[0]
    assert torch.cdist(tokens, tokens).fill_diagonal_(1.0).min() > 1e-4
    # and the order of the codes reaches the output
    codes = torch.arange(8)[None]
    swapped = codes.flip(1)
    assert not torch.allclose(model(codes=codes).prompt_embeds, model(codes=swapped).prompt_embeds, atol=1e-6)


def test_spatial_code_map_lays_codebook_rows_on_the_patch_grid():
    decoder = tiny_decoder()
    codes = torch.tensor([[3, 7, 11, 49], [0, 1, 2, 3]])
    grid = decoder.spatial_code_map(codes, (4, 6))
    assert grid.shape == (2, TINY["code_dim"], 4, 6)
    rows = decoder.codebook.weight.detach()
    for image in range(2):
        for k, code in enumerate(codes[image].tolist()):
            i, j = divmod(k, 2)
            cell = grid[image, :, 2 * i : 2 * i + 2, 3 * j : 3 * j + 3]
            torch.testing.assert_close(cell, rows[code][:, None, None].expand_as(cell))
    assert torch.equal(decoder.spatial_code_map([c for c in codes], (4, 6)), grid)


@pytest.mark.parametrize(
    "codes, size, match",
    [
        (torch.tensor([[1, 2, 3, 4, 5, 6]]), (6, 6), "square grid .* got 6 codes"),
        ([torch.tensor([1, 2, 3, 4]), torch.tensor([1])], (4, 4), "same number of codes"),
        (torch.tensor([[1, 2, 3, 4]]), (3, 4), "not a multiple of the 2x2 code grid"),
        (torch.tensor([[1, 2, 3, 50]]), (4, 4), r"lie in \[0, 50\)"),
    ],
)
def test_spatial_code_map_rejects_codes_without_a_grid(codes, size, match):
    with pytest.raises(ValueError, match=match):
        tiny_decoder().spatial_code_map(codes, size)
