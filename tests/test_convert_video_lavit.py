"""Whole-release conversion (`convert_video_lavit`) on a tiny fake `rain1011/Video-LaVIT-v1` folder.

The fake release uses original key names throughout: the keyframe and motion tokenizers and the keyframe decoder are
the parity fixtures' original-format weights; the two LLMs are random `LlamaForCausalLM`s (the generation LLM saved as
one `.bin`, the SFT LLM in two indexed shards with the tokenizers nested inside); the detokenizer UNets/VAEs are random
tiny diffusers models saved the way the release stores them. The one-folder result is loaded back with the Auto
classes and `VideoLavitPipeline` and compared with the components converted one by one by their own converters.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors import safe_open
from transformers import AutoModel, AutoModelForCausalLM, AutoProcessor, LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

import video_lavit  # noqa: F401  (registers the Auto classes)
from video_lavit import cli
from video_lavit.conversion import convert_language_model, convert_video_lavit as cvl
from video_lavit.conversion.convert_keyframe_decoder import convert_keyframe_pipeline
from video_lavit.conversion.convert_video_detokenizer import convert_video_detokenizer
from video_lavit.conversion.parity import motion_tokenizer as motion_parity
from video_lavit.conversion.parity import visual_tokenizer as visual_parity
from video_lavit.conversion.parity.common import Fixture
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration, VideoLavitModel
from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.processing.tokenizer_utils import build_tiny_llama_tokenizer
from video_lavit.testing import build_tiny_video_components

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

HIDDEN = 32
SIZES = dict(keyframe_height=64, keyframe_width=128, video_height=64, video_width=64)
TEXT = dict(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=1024, rms_norm_eps=1e-5)


def _save_llm(folder, state_dict, text_config, tokenizer, shards: int) -> None:
    """An original transformers LLM folder: `pytorch_model*.bin` (+ index when sharded), config.json, tokenizer."""
    folder.mkdir(parents=True)
    keys = list(state_dict)
    if shards == 1:
        torch.save(state_dict, folder / "pytorch_model.bin")
    else:
        weight_map = {}
        for i in range(shards):
            name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            part = keys[i * len(keys) // shards : (i + 1) * len(keys) // shards]
            torch.save({k: state_dict[k] for k in part}, folder / name)
            weight_map.update(dict.fromkeys(part, name))
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], **text_config}))
    tokenizer.save_pretrained(folder)


def _build_release(root, fixtures_dir) -> dict:
    """Write the fake release into `root`; returns what the conversion needs to know (configs, head counts)."""
    visual_fixture = Fixture.load(fixtures_dir / "visual_tokenizer.json")
    visual = {k: v.float() for k, v in visual_fixture.weights().items()}
    # the fixture projects to the released LLM width; cut `vit_proj` to the tiny LLM width
    visual["vit_proj.weight"], visual["vit_proj.bias"] = visual["vit_proj.weight"][:HIDDEN], visual["vit_proj.bias"][:HIDDEN]
    visual_config = visual_parity.config_from_fixture(visual_fixture.spec, visual)
    motion_fixture = Fixture.load(fixtures_dir / "motion_tokenizer.json")
    motion = {k: v.float() for k, v in motion_fixture.weights().items()}
    motion_config = motion_parity.build_from_fixture(motion_fixture).config
    decoder_fixture = Fixture.load(fixtures_dir / "visual_tokenizer_decoder.json")
    decoder = {k: v.float() for k, v in decoder_fixture.weights().items()}
    heads = decoder_fixture.spec["constructor_kwargs"]["num_heads"]
    if decoder["in_proj.weight"].shape[1] != visual["quantize.embedding.weight"].shape[1]:
        pytest.skip("the decoder fixture was not recorded for the visual tokenizer fixture's codebook")

    tokenizer = build_tiny_llama_tokenizer()
    text_vocab = len(tokenizer)
    vocab = text_vocab + 2 + visual_config.codebook_size + 2 + motion_config.codebook_size
    text = {**TEXT, "vocab_size": vocab, "bos_token_id": 1, "eos_token_id": 2}
    config = VideoLavitConfig(text_config=text, visual_tokenizer_config=visual_config,
                              motion_tokenizer_config=motion_config, text_vocab_size=text_vocab, max_clips=2)

    torch.manual_seed(0)
    sft = dict(LlamaForCausalLM(LlamaConfig(**text)).state_dict())
    sft["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # written by transformers < 4.35; recomputed
    sft.update({"model.visual_tokenizer." + k: v for k, v in visual.items()})
    sft.update({"model.motion_tokenizer." + k: v.to(torch.bfloat16) for k, v in motion.items()})
    _save_llm(root / "language_model_sft", sft, text, tokenizer, shards=2)
    torch.manual_seed(1)
    generation = dict(LlamaForCausalLM(LlamaConfig(**text)).state_dict())
    _save_llm(root / "language_model", generation, text, build_tiny_llama_tokenizer(pad_token="</s>"), shards=1)

    (root / "visual_tokenizer").mkdir()
    torch.save({k[len("encoder."):]: v for k, v in visual.items() if k.startswith("encoder.")},
               root / "visual_tokenizer" / "eva_vitg_psz14.bin")
    torch.save({k: v for k, v in visual.items() if not k.startswith(("encoder.", "vit_proj."))},
               root / "visual_tokenizer" / "tokenizer_encoder.bin")
    torch.save(decoder, root / "visual_tokenizer" / "highres_tokenizer_decoder.bin")
    torch.save(motion, root / "motion_tokenizer.bin")

    # keyframe detokenizer: an SDXL-layout UNet sized for the decoder's prompt / pooled widths
    prompt_dims = (decoder["unet_proj_1.weight"].shape[0], decoder["unet_proj_2.weight"].shape[0])
    pooled = decoder["unet_attnpool.c_proj.weight"].shape[0]
    torch.manual_seed(2)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), norm_num_groups=8, use_linear_projection=True,
        cross_attention_dim=sum(prompt_dims), addition_embed_type="text_time", addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=pooled + 6 * 4,
    )
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4, sample_size=64)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
    unet.save_pretrained(root / "image_detokenizer" / "unet", safe_serialization=False)
    vae.save_pretrained(root / "image_detokenizer" / "vae", safe_serialization=False)
    scheduler.save_pretrained(root / "image_detokenizer" / "scheduler")

    # video detokenizer: original unet config, one bf16 .bin with unprefixed UNet keys + `motion_encoder.*`
    torch.manual_seed(3)
    video = build_tiny_video_components()
    unet_dir = root / "video_detokenizer" / "unet"
    unet_dir.mkdir(parents=True)
    unet_config = {k: v for k, v in video["video_unet"].config.items() if not k.startswith("_")}
    (unet_dir / "config.json").write_text(json.dumps({"_class_name": "UNetSpatioTemporalConditionModel",
                                                      "_diffusers_version": "0.25.1", **unet_config}))
    state = {k: v.to(torch.bfloat16) for k, v in video["video_unet"].state_dict().items()}
    state.update({"motion_encoder." + k: v.to(torch.bfloat16) for k, v in video["motion_encoder"].state_dict().items()})
    torch.save(state, unet_dir / "diffusion_pytorch_model.bin")
    video["video_vae"].save_pretrained(root / "video_detokenizer" / "vae")
    video["video_scheduler"].save_pretrained(root / "video_detokenizer" / "scheduler")
    encoder_config = {k: v for k, v in video["motion_encoder"].config.items() if not k.startswith("_")}
    return dict(config=config, heads=heads, motion_encoder_config=encoder_config, sft=sft, generation=generation)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, fixtures_dir):
    """The fake release, its one-folder conversion through the CLI (fp32, small shards), and the references."""
    base = tmp_path_factory.mktemp("convert_video_lavit")
    release = base / "Video-LaVIT-v1"
    info = _build_release(release, fixtures_dir)
    info["config"].to_json_file(str(base / "config.json"))
    (base / "motion_encoder.json").write_text(json.dumps(info["motion_encoder_config"]))
    argv = ["--original", str(release), "--out", str(base / "hf"), "--dtype", "fp32", "--max-shard-size", "300KB",
            "--config", str(base / "config.json"), "--keyframe-decoder-heads", str(info["heads"]),
            "--motion-encoder-config", str(base / "motion_encoder.json")]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items()]
    assert cli.main(["convert", *argv]) == 0
    return dict(info, base=base, release=release, out=base / "hf")


@pytest.fixture(scope="module")
def references(converted):
    """Each component converted on its own by its converter."""
    base, release, config = converted["base"], converted["release"], converted["config"]
    for variant in ("understanding", "generation"):
        convert_language_model.convert_checkpoint(release, base / f"ref_{variant}", variant, torch.float32, config=config)
    convert_keyframe_pipeline(release, base / "ref_keyframe", torch.float32, num_attention_heads=converted["heads"])
    convert_video_detokenizer(release, base / "ref_video", dtype=torch.float32,
                              motion_encoder_config=converted["motion_encoder_config"])
    return base


def _assert_same_state(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    ours_sd, reference_sd = ours.state_dict(), reference.state_dict()
    assert ours_sd.keys() == reference_sd.keys()
    for key, value in reference_sd.items():
        assert ours_sd[key].dtype == value.dtype and torch.equal(ours_sd[key], value), key


def test_output_layout_is_sharded_and_complete(converted):
    out = converted["out"]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and not list(out.glob("*.tmp")) and not (out.parent / "hf.partial").exists()
    for shard in shards:
        with safe_open(str(out / shard), "pt") as f:
            keys = list(f.keys())
            sizes = [f.get_slice(k).get_shape() for k in keys]
            assert f.metadata() == {"format": "pt"}
        nbytes = sum(4 * int(np.prod(s)) for s in sizes)
        # a shard exceeds the limit only when it holds one tensor larger than the limit
        assert nbytes <= 300_000 or len(keys) == 1, (shard, nbytes)
    assert set(index["weight_map"]) == set(VideoLavitForConditionalGeneration(converted["config"]).state_dict())
    model_index = json.loads((out / "model_index.json").read_text())
    assert model_index["_class_name"] == "VideoLavitPipeline"
    assert {k: model_index[k] for k in SIZES} == SIZES
    for name in ("language_model", "processor", "keyframe_decoder", "keyframe_unet", "keyframe_vae",
                 "keyframe_scheduler", "video_unet", "motion_encoder", "video_vae", "video_scheduler"):
        assert (out / name).is_dir(), name
    assert (out / "processor_config.json").is_file() and (out / "config.json").is_file()


def test_auto_classes_load_the_understanding_model(converted, references):
    model = AutoModelForCausalLM.from_pretrained(converted["out"], dtype=torch.float32).eval()
    reference = VideoLavitForConditionalGeneration.from_pretrained(references / "ref_understanding", dtype=torch.float32)
    assert type(model) is VideoLavitForConditionalGeneration
    _assert_same_state(model, reference)
    # the SFT Llama weights really are the understanding ones, not the generation LLM's
    assert torch.equal(model.lm_head.weight, converted["sft"]["lm_head.weight"])
    ids = torch.tensor([[1, 5, 9, 30]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reference.eval()(input_ids=ids).logits)
    base = AutoModel.from_pretrained(converted["out"], dtype=torch.float32)
    assert type(base) is VideoLavitModel
    assert torch.equal(base.language_model.embed_tokens.weight, converted["sft"]["model.embed_tokens.weight"])
    generation = AutoModelForCausalLM.from_pretrained(converted["out"], subfolder="language_model", dtype=torch.float32)
    assert torch.equal(generation.lm_head.weight, converted["generation"]["lm_head.weight"])


def test_auto_processor_loads_with_the_release_tokenizer(converted):
    processor = AutoProcessor.from_pretrained(converted["out"])
    assert isinstance(processor, VideoLavitProcessor)
    size = converted["config"].visual_tokenizer_config.image_size
    assert processor.image_processor.size["height"] == size and processor.video_processor.size["height"] == size
    original = build_tiny_llama_tokenizer()
    text = "a dog runs"
    assert processor(text=text, return_tensors="pt")["input_ids"][0].tolist() == original(text)["input_ids"]
    assert processor.chat_template
    pixel_values = processor(text="<image> what", images=np.zeros((40, 50, 3), np.uint8), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, size, size)


def test_pipeline_matches_the_separately_converted_components(converted, references):
    pipe = VideoLavitPipeline.from_pretrained(converted["out"], dtype=torch.float32)
    reference = VideoLavitPipeline.from_parts(
        references / "ref_generation", references / "ref_keyframe", references / "ref_video",
        processor=converted["out"] / "processor", dtype=torch.float32, **SIZES,
    )
    for name in ("language_model", "keyframe_decoder", "keyframe_unet", "keyframe_vae", "video_unet",
                 "motion_encoder", "video_vae"):
        _assert_same_state(getattr(pipe, name), getattr(reference, name))
    assert pipe.motion_tokenizer is None
    assert torch.equal(pipe.language_model.lm_head.weight, converted["generation"]["lm_head.weight"])
    assert dict(pipe.video_scheduler.config) == dict(reference.video_scheduler.config)
    assert type(pipe.keyframe_scheduler) is type(reference.keyframe_scheduler)
    kwargs = dict(num_inference_steps=1, keyframe_num_inference_steps=1, max_new_tokens=(12, 200),
                  min_new_tokens=(2, 20), output_type="np")
    for p in (pipe, reference):
        p.set_progress_bar_config(disable=True)
    frames = pipe("a red ball", generator=torch.Generator().manual_seed(0), **kwargs).frames
    expected = reference("a red ball", generator=torch.Generator().manual_seed(0), **kwargs).frames
    assert frames.shape == expected.shape and frames.shape[-3:-1] == (SIZES["video_height"], SIZES["video_width"])
    np.testing.assert_array_equal(frames, expected)


def test_bf16_understanding_only(converted, tmp_path):
    out = cvl.convert_video_lavit(converted["release"], tmp_path / "u", parts=("understanding",),
                                  config=converted["config"])
    assert not (out / "model_index.json").exists() and not (out / "language_model").exists()
    weights = out / "model.safetensors"
    assert weights.is_file()  # the default shard size keeps the tiny model in one file
    with safe_open(str(weights), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    assert torch.equal(model.lm_head.weight, converted["sft"]["lm_head.weight"].to(torch.bfloat16))


def test_shard_writer_streams_planned_tensors_into_loadable_files(tmp_path):
    from safetensors.torch import load_file

    tensors = {"a": torch.arange(10.0), "b": torch.ones(3, 10), "big": torch.randn(80), "ids": torch.arange(3),
               "mask": torch.tensor([True, False]), "c": torch.tensor(2.5)}
    plan = [(k, tuple(v.shape), cvl.output_dtype(v.dtype, torch.bfloat16)) for k, v in tensors.items()]
    writer = cvl.SafetensorsShardWriter(tmp_path, plan, max_shard_bytes=100)
    for key, value in tensors.items():
        writer.write(key, value)
    names = writer.close()
    assert names == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    # bf16 halves the bytes: a (20) + b (60) fit in 100; big (160) gets its own file; ids (24) + mask (2) + c (2)
    assert index["weight_map"] == {"a": names[0], "b": names[0], "big": names[1], "ids": names[2], "mask": names[2],
                                   "c": names[2]}
    assert index["metadata"]["total_size"] == 20 + 60 + 160 + 24 + 2 + 2
    loaded = {}
    for name in names:
        loaded.update(load_file(str(tmp_path / name)))
        with safe_open(str(tmp_path / name), "pt") as f:
            assert f.metadata() == {"format": "pt"}
    for key, value in tensors.items():
        expected = value.to(torch.bfloat16) if value.is_floating_point() else value
        assert loaded[key].dtype == expected.dtype and torch.equal(loaded[key], expected), key

    (tmp_path / "one").mkdir()
    single = cvl.SafetensorsShardWriter(tmp_path / "one", [("x", (3,), torch.float32), ("y", (2,), torch.float32)], 10**6)
    single.write("x", torch.ones(3))
    with pytest.raises(ValueError, match=r"expected y \(2,\) next, got z"):
        single.write("z", torch.ones(2))
    with pytest.raises(ValueError, match="never written: \\['y'\\]"):
        single.close()


@pytest.fixture
def broken_release(converted, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(converted["release"], copy)
    return copy


def _convert(converted, release, out):
    return cvl.convert_video_lavit(release, out, torch.float32, config=converted["config"],
                                   keyframe_decoder_heads=converted["heads"],
                                   motion_encoder_config=converted["motion_encoder_config"])


def test_missing_files_are_all_named(converted, broken_release, tmp_path):
    (broken_release / "motion_tokenizer.bin").unlink()
    (broken_release / "image_detokenizer" / "vae" / "config.json").unlink()
    (broken_release / "language_model_sft" / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(FileNotFoundError) as error:
        _convert(converted, broken_release, tmp_path / "out")
    message = str(error.value)
    for name in ("motion_tokenizer.bin", "image_detokenizer/vae/config.json", "pytorch_model-00002-of-00002.bin"):
        assert name in message, name
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _convert(converted, tmp_path / "nowhere", tmp_path / "out")


def test_extra_key_is_refused_naming_file_and_key(converted, broken_release, tmp_path):
    shard = broken_release / "language_model_sft" / "pytorch_model-00002-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    torch.save({**state, "model.extra_adapter.weight": torch.zeros(2)}, shard)
    with pytest.raises(ValueError, match=r"model\.extra_adapter\.weight.*pytorch_model-00002-of-00002\.bin"):
        _convert(converted, broken_release, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_missing_and_misshaped_keys_are_refused(converted, broken_release, tmp_path):
    path = broken_release / "language_model" / "pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "model.layers.0.mlp.up_proj.weight"}, path)
    with pytest.raises(ValueError, match=r"language_model.*model\.language_model\.layers\.0\.mlp\.up_proj\.weight"):
        _convert(converted, broken_release, tmp_path / "out")
    torch.save({**state, "lm_head.weight": state["lm_head.weight"][:-1]}, path)
    with pytest.raises(ValueError, match=r"shape mismatches.*lm_head\.weight.*language_model/pytorch_model\.bin"):
        _convert(converted, broken_release, tmp_path / "out")
    # the motion tokenizer inside the SFT shards is checked as a whole
    shard = broken_release / "language_model_sft" / "pytorch_model-00002-of-00002.bin"
    torch.save(state, path)
    sft = torch.load(shard, weights_only=True)
    dropped = next(k for k in sft if k.startswith("model.motion_tokenizer.decoder."))
    torch.save({k: v for k, v in sft.items() if k != dropped}, shard)
    with pytest.raises(ValueError, match="language_model_sft"):
        _convert(converted, broken_release, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_bad_detokenizer_weights_are_refused_naming_the_file(converted, broken_release, tmp_path):
    path = broken_release / "video_detokenizer" / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    torch.save({**state, "vae.decoder.conv_in.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"(?s)video_detokenizer/unet/diffusion_pytorch_model\.bin.*vae\.decoder\.conv_in"):
        _convert(converted, broken_release, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_legacy_pickles_load_without_memory_map(tmp_path):
    torch.save({"a": torch.arange(3.0)}, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    torch.save({"a": torch.arange(3.0)}, tmp_path / "zip.bin")
    for name in ("legacy.bin", "zip.bin"):
        assert torch.equal(cvl.load_weights_file(tmp_path / name)["a"], torch.arange(3.0))


def test_weights_files_keep_only_the_requested_keys(tmp_path):
    from safetensors.torch import save_file

    tensors = {"a": torch.arange(3.0), "b.weight": torch.ones(2, 2, dtype=torch.bfloat16)}
    torch.save(tensors, tmp_path / "zip.bin")
    torch.save(tensors, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    save_file(tensors, str(tmp_path / "w.safetensors"))
    for name in ("zip.bin", "legacy.bin", "w.safetensors"):
        kept = cvl.load_weights_file(tmp_path / name, keep=lambda key: key.startswith("b."))
        assert list(kept) == ["b.weight"] and kept["b.weight"].dtype == torch.bfloat16
        assert torch.equal(kept["b.weight"], tensors["b.weight"])
        assert cvl.load_weights_file(tmp_path / name).keys() == tensors.keys()


def test_refuses_non_empty_output_and_bad_arguments(converted, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        _convert(converted, converted["release"], tmp_path / "out")
    with pytest.raises(ValueError, match="parts"):
        cvl.convert_video_lavit(converted["release"], tmp_path / "o2", parts=("everything",))
    with pytest.raises(ValueError, match="max_shard_size"):
        cvl.convert_video_lavit(converted["release"], tmp_path / "o2", max_shard_size=0)


LLAMA_2_7B = {"model_type": "llama", "architectures": ["VideoLaVITLlamaForCausalLM"], "vocab_size": 49412,
              "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 32, "hidden_act": "silu", "max_position_embeddings": 4096, "rope_theta": 10000.0,
              "rope_scaling": None, "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "attention_bias": False,
              "bos_token_id": 1, "eos_token_id": 2, "use_xformers": True, "torch_dtype": "bfloat16"}


def test_full_size_release_plan_on_meta_tensors(released_keys_dir, tmp_path):
    """The released files (every key list of `released_keys/`, as meta tensors: no data) pass the whole-release check
    with the released configs, and the write plan holds every tensor of the full-size model."""
    def keys(name):
        return json.loads((released_keys_dir / f"{name}.json").read_text())["keys"]

    def meta(entries, prefix=""):
        return {prefix + k: torch.empty(shape, dtype=torch.bfloat16, device="meta") for k, shape in entries}

    for folder, name, shards in (("language_model_sft", "language_model_sft", 4), ("language_model", "language_model", 3)):
        entries, weight_map = keys(name), {}
        (tmp_path / folder).mkdir()
        for i in range(shards):
            file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            part = entries[i * len(entries) // shards : (i + 1) * len(entries) // shards]
            torch.save(meta(part), tmp_path / folder / file)
            weight_map.update(dict.fromkeys((k for k, _ in part), file))
        (tmp_path / folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
        (tmp_path / folder / "config.json").write_text(json.dumps(LLAMA_2_7B))
    (tmp_path / "visual_tokenizer").mkdir()
    for name in ("eva_vitg_psz14", "tokenizer_encoder"):
        torch.save(meta(keys(f"visual_tokenizer__{name}")), tmp_path / "visual_tokenizer" / f"{name}.bin")
    torch.save(meta(keys("motion_tokenizer")), tmp_path / "motion_tokenizer.bin")

    config = cvl.language_model_config(tmp_path, "understanding")
    model = cvl.meta_language_model(config)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for variant in cvl.PARTS:
        plan = cvl.check_language_model(tmp_path, variant, model)
        assert {k: shape for k, shape, _ in plan} == ours
        writer = cvl.SafetensorsShardWriter(tmp_path, [(k, s, torch.bfloat16) for k, s, _ in plan], 5 * 10**9)
        group_bytes = [sum(2 * int(np.prod(s)) for _, s, _ in group) for group in writer.groups]
        # about 8.46 G parameters in bf16: four files of at most 5 GB
        assert 16.5e9 < sum(group_bytes) < 17.5e9 and max(group_bytes) <= 5e9 and len(writer.names) == 4
    assert config.text_config.vocab_size == 49412 and config.text_config.num_hidden_layers == 32
    assert not list(tmp_path.glob("*.safetensors"))  # planning writes nothing


@pytest.fixture(scope="module")
def remote_code_out(converted, tmp_path_factory):
    """The understanding part converted again through the CLI with `--remote-code`."""
    out = tmp_path_factory.mktemp("remote_code") / "hf"
    argv = ["--original", str(converted["release"]), "--out", str(out), "--dtype", "fp32", "--parts", "understanding",
            "--config", str(converted["base"] / "config.json"), "--remote-code"]
    assert cvl.main(argv) == 0
    return out


def test_remote_code_writes_auto_map_and_sources_without_touching_weights(converted, remote_code_out):
    from video_lavit.hub_export import unresolved_auto_map_entries

    config = json.loads((remote_code_out / "config.json").read_text())
    assert config["auto_map"] == convert_language_model.REMOTE_CODE_AUTO_MAP
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_video_lavit.VideoLavitForConditionalGeneration"
    copied = {p.name for p in remote_code_out.glob("*.py")}
    assert {"modeling_video_lavit.py", "configuration_video_lavit.py", "generation_video_lavit.py",
            "modeling_visual_tokenizer.py", "modeling_motion_tokenizer.py"} <= copied
    package = Path(sys.modules[VideoLavitForConditionalGeneration.__module__].__file__).parent
    for name in copied:  # byte-identical copies of the package's own modules
        assert (remote_code_out / name).read_bytes() == (package / name).read_bytes()
    assert unresolved_auto_map_entries(remote_code_out) == []
    # the weights are those of the plain conversion, and the plain folder has no auto_map
    plain = converted["out"]
    assert "auto_map" not in json.loads((plain / "config.json").read_text())
    assert not list(plain.glob("*.py"))
    ours = AutoModelForCausalLM.from_pretrained(remote_code_out)
    reference = AutoModelForCausalLM.from_pretrained(plain)
    _assert_same_state(ours, reference)


def test_add_remote_code_sets_the_auto_map_and_copies_imports(tmp_path):
    config = VideoLavitConfig()
    files = convert_language_model.add_remote_code(config, tmp_path / "new")
    assert config.auto_map == convert_language_model.REMOTE_CODE_AUTO_MAP
    assert sorted(p.name for p in (tmp_path / "new").glob("*.py")) == files
    assert "configuration_video_lavit.py" in files and "modeling_video_lavit.py" in files
    config.save_pretrained(tmp_path / "new")
    from video_lavit.hub_export import unresolved_auto_map_entries

    assert unresolved_auto_map_entries(tmp_path / "new") == []


@pytest.mark.slow
def test_remote_code_folder_loads_in_a_fresh_process_without_the_package(remote_code_out, tmp_path):
    import subprocess

    ids = [[1, 5, 6, 7]]
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(remote_code_out).eval()(input_ids=torch.tensor(ids)).logits
    torch.save(expected, tmp_path / "expected.pt")
    code = (
        "import sys; sys.modules['video_lavit'] = None\n"  # the package must not be importable
        "import torch\nfrom transformers import AutoModelForCausalLM\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(remote_code_out)!r}, trust_remote_code=True)\n"
        "assert type(m).__module__.startswith('transformers_modules'), type(m)\n"
        f"out = m.eval()(input_ids=torch.tensor({ids})).logits\n"
        f"assert torch.equal(out, torch.load({str(tmp_path / 'expected.pt')!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
