"""VideoLavitKeyframePipeline with tiny components: reproducibility, reload, guidance, inputs, conversion."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, EulerAncestralDiscreteScheduler, UNet2DConditionModel

from video_lavit.conversion.convert_keyframe_decoder import convert_keyframe_pipeline
from video_lavit.modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from video_lavit.pipelines.pipeline_video_lavit_keyframe import VideoLavitKeyframePipeline, image_token_ids_to_codes

DECODER = dict(
    codebook_size=50, code_dim=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
    num_queries=16, feature_dim=16, prompt_embed_dims=(12, 20), pooled_embed_dim=20, pooler_num_heads=2,
)
TIME_EMBED = 4


def tiny_components(seed=0):
    torch.manual_seed(seed)
    decoder = VideoLavitKeyframeDecoder(**DECODER)
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.3)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), norm_num_groups=8, use_linear_projection=True, transformer_layers_per_block=(1, 1),
        cross_attention_dim=sum(DECODER["prompt_embed_dims"]), addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED, projection_class_embeddings_input_dim=DECODER["pooled_embed_dim"] + 6 * TIME_EMBED,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
        sample_size=64, scaling_factor=0.13025,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
    return dict(keyframe_decoder=decoder.eval(), unet=unet.eval(), vae=vae.eval(), scheduler=scheduler)


@pytest.fixture(scope="module")
def pipe():
    pipeline = VideoLavitKeyframePipeline(**tiny_components())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


CODES = [torch.tensor([1, 5, 9, 13]), torch.tensor([2, 4, 8, 16, 32, 49])]


def run(pipe, seed=0, **kwargs):
    kwargs.setdefault("codes", CODES)
    kwargs.setdefault("num_inference_steps", 2)
    return pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kwargs).images


def test_output_types_and_default_size(pipe):
    images = run(pipe)
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    pil = pipe(codes=CODES, num_inference_steps=1, height=128, width=64, output_type="pil").images
    assert len(pil) == 2 and isinstance(pil[0], PIL.Image.Image) and pil[0].size == (64, 128)
    pt = pipe(codes=CODES[:1], num_inference_steps=1, output_type="pt").images
    assert isinstance(pt, torch.Tensor) and pt.shape == (1, 3, 64, 64)
    latent = pipe(codes=CODES[:1], num_inference_steps=1, output_type="latent").images
    assert latent.shape == (1, 4, 8, 8)


def test_seed_reproducibility(pipe):
    first, second, other = run(pipe, seed=3), run(pipe, seed=3), run(pipe, seed=4)
    np.testing.assert_array_equal(first, second)
    assert np.abs(first - other).max() > 1e-3


def test_llm_ids_and_codes_give_the_same_image(pipe):
    ids = [torch.cat([torch.tensor([32000]), c + 32002, torch.tensor([32001])]) for c in CODES]
    np.testing.assert_array_equal(run(pipe, codes=None, image_token_ids=ids), run(pipe))
    assert [c.tolist() for c in image_token_ids_to_codes(ids, 50)] == [c.tolist() for c in CODES]
    # Plain Python lists work too; a flat list is one image.
    np.testing.assert_array_equal(run(pipe, codes=[c.tolist() for c in CODES]), run(pipe))
    np.testing.assert_array_equal(run(pipe, codes=CODES[0].tolist()), run(pipe, codes=CODES[:1]))


def test_zero_negative_condition_and_time_ids(pipe):
    seen = {}

    def callback(p, step, timestep, tensors):
        seen.setdefault("steps", []).append(step)
        seen.update({k: v.clone() for k, v in tensors.items()})
        return {}

    run(pipe, height=128, width=64, guidance_scale=7.0, num_inference_steps=3, callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "add_text_embeds", "add_time_ids"])
    assert seen["steps"] == [0, 1, 2]
    assert seen["prompt_embeds"].shape == (4, 16, 32) and seen["add_text_embeds"].shape == (4, 20)
    assert seen["prompt_embeds"][:2].abs().max() == 0 and seen["add_text_embeds"][:2].abs().max() == 0
    assert seen["prompt_embeds"][2:].abs().max() > 0
    expected = torch.tensor([[128.0, 64.0, 0.0, 0.0, 128.0, 64.0]]).repeat(4, 1)
    torch.testing.assert_close(seen["add_time_ids"], expected)
    assert seen["latents"].shape == (2, 4, 16, 8)


def test_guidance_scale_one_skips_the_unconditional_branch(pipe):
    shapes = []
    run(pipe, guidance_scale=1.0, callback_on_step_end=lambda p, i, t, k: shapes.append(k["prompt_embeds"].shape) or {},
        callback_on_step_end_tensor_inputs=["prompt_embeds"])
    assert shapes == [(2, 16, 32)] * 2
    # u + 1 * (c - u) == c, so skipping the unconditional pass gives the same image.
    np.testing.assert_allclose(run(pipe, guidance_scale=1.0), run(pipe, guidance_scale=1.0 + 1e-9), atol=1e-5)


def test_callback_can_replace_latents(pipe):
    def zero_latents(p, i, t, tensors):
        return {"latents": torch.zeros_like(tensors["latents"])}

    a = run(pipe, seed=0, callback_on_step_end=zero_latents, num_inference_steps=1)
    b = run(pipe, seed=1, callback_on_step_end=zero_latents, num_inference_steps=1)
    np.testing.assert_array_equal(a, b)  # the noise no longer matters


def test_prompt_embeds_and_num_images_per_prompt(pipe):
    out = pipe.keyframe_decoder(codes=CODES)
    images = run(pipe, codes=None, prompt_embeds=out.prompt_embeds, pooled_prompt_embeds=out.pooled_prompt_embeds)
    np.testing.assert_allclose(images, run(pipe), atol=1e-6)
    many = run(pipe, codes=CODES[:1], num_images_per_prompt=3)
    assert many.shape == (3, 64, 64, 3) and np.abs(many[0] - many[1]).max() > 1e-3


def test_save_and_reload_gives_the_same_image(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["keyframe_decoder"] == ["video_lavit.modeling.modeling_keyframe_decoder", "VideoLavitKeyframeDecoder"]
    assert index["visual_token_offset"] == 32002
    assert (tmp_path / "keyframe_decoder" / "diffusion_pytorch_model.safetensors").is_file()
    reloaded = VideoLavitKeyframePipeline.from_pretrained(tmp_path)
    reloaded.set_progress_bar_config(disable=True)
    assert isinstance(reloaded.scheduler, DDIMScheduler)
    np.testing.assert_allclose(run(reloaded, seed=5), run(pipe, seed=5), atol=1e-4)


def test_euler_ancestral_scheduler_uses_the_generator():
    components = tiny_components()
    components["scheduler"] = EulerAncestralDiscreteScheduler.from_config(components["scheduler"].config)
    pipeline = VideoLavitKeyframePipeline(**components)
    pipeline.set_progress_bar_config(disable=True)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * pipeline.scheduler.init_noise_sigma
    # Same start latents; the ancestral noise comes from the generator, so seeds differ only through it.
    a = run(pipeline, seed=0, latents=latents, num_inference_steps=3)
    b = run(pipeline, seed=0, latents=latents, num_inference_steps=3)
    c = run(pipeline, seed=1, latents=latents, num_inference_steps=3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(height=100), ValueError, "multiples of 64, got 100x64"),
        (dict(width=96), ValueError, "multiples of 64, got 64x96"),
        (dict(codes=[torch.tensor([1, 50])]), ValueError, r"\[0, 50\)"),
        (dict(codes=[torch.tensor([1]), torch.tensor([], dtype=torch.long)]), ValueError, "image 1 has no visual codes"),
        (dict(codes=[]), ValueError, "empty list"),
        (dict(codes=[torch.zeros(17, dtype=torch.long)]), ValueError, "at most 16"),
        (dict(codes=None, image_token_ids=[torch.tensor([32000, 32003, 5, 32001])]), ValueError, r"\[5\]"),
        (dict(codes=None, image_token_ids=[torch.tensor([32000, 32002 + 50])]), ValueError, r"\[32002, 32052\)"),
        (dict(codes=None), ValueError, "exactly one"),
        (dict(image_token_ids=[torch.tensor([32002])]), ValueError, "exactly one"),
        (dict(num_inference_steps=0), ValueError, "num_inference_steps"),
        (dict(output_type="jpeg"), ValueError, "output_type"),
        (dict(latents=torch.zeros(1, 4, 8, 8)), ValueError, r"latents must have shape \(2, 4, 8, 8\)"),
        (dict(codes=torch.zeros(2, 2, 2, dtype=torch.long)), ValueError, "1-D"),
        (dict(codes=None, prompt_embeds=torch.zeros(1, 16, 32)), ValueError, "together"),
        (dict(codes=None, prompt_embeds=torch.zeros(1, 16, 30), pooled_prompt_embeds=torch.zeros(1, 20)),
         ValueError, r"\[B, L, 32\], got \(1, 16, 30\)"),
        (dict(codes=None, prompt_embeds=torch.zeros(2, 16, 32), pooled_prompt_embeds=torch.zeros(1, 20)),
         ValueError, r"\[2, 20\], got \(1, 20\)"),
        (dict(num_images_per_prompt=0), ValueError, "num_images_per_prompt"),
    ],
)
def test_bad_input_raises(pipe, kwargs, error, match):
    kwargs = {"codes": CODES, "num_inference_steps": 1, **kwargs}
    with pytest.raises(error, match=match):
        pipe(**kwargs)


def test_mismatched_components_are_rejected():
    components = tiny_components()
    decoder = VideoLavitKeyframeDecoder(**{**DECODER, "prompt_embed_dims": (12, 12)})
    with pytest.raises(ValueError, match="cross_attention_dim 32 != keyframe decoder prompt width 24"):
        VideoLavitKeyframePipeline(**{**components, "keyframe_decoder": decoder})
    decoder = VideoLavitKeyframeDecoder(**{**DECODER, "pooled_embed_dim": 16})
    with pytest.raises(ValueError, match="projection_class_embeddings_input_dim 44 != pooled width 16"):
        VideoLavitKeyframePipeline(**{**components, "keyframe_decoder": decoder})


def _write_original_checkpoint(folder, components):
    """A folder laid out like the released checkpoint (original key names, .bin files)."""
    decoder = components["keyframe_decoder"]
    inverse = {
        "code_position_embedding": "pos_embed", "query_embeddings": "query_embed", "code_proj": "in_proj",
        "self_attn_norm": "norm0", "cross_attn_norm": "norm1", "mlp_norm": "norm2", "feature_head": "decode_task_layer",
        "prompt_proj_1": "unet_proj_1", "prompt_proj_2": "unet_proj_2", "pooler": "unet_attnpool",
        "position_embedding": "positional_embedding", "layers": "blocks",
    }
    original = {}
    for key, value in decoder.state_dict().items():
        if key == "codebook.weight":
            continue
        parts = [inverse.get(p, p) for p in key.split(".")]
        name = ".".join(parts)
        name = name.replace("self_attn.out_proj", "self_attn.proj").replace("cross_attn.out_proj", "cross_attn.proj")
        name = name.replace("cross_attn.q_proj", "cross_attn.query").replace("cross_attn.k_proj", "cross_attn.key")
        name = name.replace("cross_attn.v_proj", "cross_attn.value").replace("unet_attnpool.out_proj", "unet_attnpool.c_proj")
        original[name] = value.clone()
    (folder / "visual_tokenizer").mkdir(parents=True)
    torch.save(original, folder / "visual_tokenizer" / "highres_tokenizer_decoder.bin")
    torch.save({"quantize.embedding.weight": decoder.codebook.weight.detach().clone()},
               folder / "visual_tokenizer" / "tokenizer_encoder.bin")
    components["unet"].save_pretrained(folder / "image_detokenizer" / "unet", safe_serialization=False)
    components["vae"].save_pretrained(folder / "image_detokenizer" / "vae", safe_serialization=False)
    components["scheduler"].save_pretrained(folder / "image_detokenizer" / "scheduler")
    return original


def test_convert_released_layout_to_pipeline(pipe, tmp_path):
    components = {"keyframe_decoder": pipe.keyframe_decoder, "unet": pipe.unet, "vae": pipe.vae, "scheduler": pipe.scheduler}
    original = _write_original_checkpoint(tmp_path / "original", components)
    assert "blocks.0.cross_attn.query.weight" in original and "unet_attnpool.c_proj.bias" in original
    converted = convert_keyframe_pipeline(tmp_path / "original", tmp_path / "converted",
                                          num_attention_heads=DECODER["num_attention_heads"])
    assert (tmp_path / "converted" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    reloaded = VideoLavitKeyframePipeline.from_pretrained(tmp_path / "converted")
    reloaded.set_progress_bar_config(disable=True)
    assert isinstance(converted.scheduler, DDIMScheduler)
    np.testing.assert_allclose(run(reloaded, seed=2), run(pipe, seed=2), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="model CPU offload needs an accelerator")
def test_model_cpu_offload_matches():
    reference = VideoLavitKeyframePipeline(**tiny_components())
    reference.set_progress_bar_config(disable=True)
    expected = run(reference, seed=7)
    offloaded = VideoLavitKeyframePipeline(**tiny_components())
    offloaded.set_progress_bar_config(disable=True)
    offloaded.enable_model_cpu_offload()
    np.testing.assert_allclose(run(offloaded, seed=7), expected, atol=1e-3)
    assert offloaded.unet.device.type == "cpu"


def test_long_video_renoising_of_the_previous_frame(pipe):
    frame = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8))
    steps = []
    images = run(pipe, codes=CODES[:1], image=[frame], image_inverse_rate=0.5, num_inference_steps=4,
                 callback_on_step_end=lambda p, i, t, k: steps.append(int(t)) or {})
    pipe.scheduler.set_timesteps(4)
    assert steps == pipe.scheduler.timesteps[2:].tolist()
    assert images.shape == (1, 64, 64, 3)
    again = run(pipe, codes=CODES[:1], image=[frame], image_inverse_rate=0.5, num_inference_steps=4)
    np.testing.assert_array_equal(images, again)

    # The start latents: bicubic resize, VAE posterior mode x scaling factor, forward noise at the start timestep.
    t = pipe.scheduler.timesteps[2]
    got = pipe.prepare_image_latents([frame], 64, 64, t, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(1))
    pixels = torch.from_numpy(np.asarray(frame.resize((64, 64), PIL.Image.BICUBIC), dtype=np.float32) / 255.0)
    pixels = (pixels.permute(2, 0, 1)[None] - 0.5) / 0.5
    with torch.no_grad():
        clean = pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    alpha = pipe.scheduler.alphas_cumprod[int(t)]
    torch.testing.assert_close(got, alpha.sqrt() * clean + (1 - alpha).sqrt() * noise, atol=1e-5, rtol=1e-5)

    with pytest.raises(ValueError, match="either `image`"):
        pipe(codes=CODES[:1], image=[frame], latents=torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"image_inverse_rate must be in \[0, 1\)"):
        pipe(codes=CODES[:1], image=[frame], image_inverse_rate=1.0)
    with pytest.raises(ValueError, match="got 1 images for 2 keyframes"):
        pipe(codes=CODES, image=[frame], num_inference_steps=2)


def test_fp16_vae_is_upcast_for_decoding():
    components = tiny_components()
    components["vae"] = components["vae"].to(torch.float16)
    components["vae"].register_to_config(force_upcast=True)
    pipeline = VideoLavitKeyframePipeline(**components)
    pipeline.set_progress_bar_config(disable=True)
    images = run(pipeline)
    assert np.isfinite(images).all() and images.shape == (2, 64, 64, 3)
    assert pipeline.vae.dtype == torch.float16  # restored after decoding
    reference = VideoLavitKeyframePipeline(**tiny_components())
    reference.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(images, run(reference), atol=1e-2)


SDXL_BASE_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(5, 10, 20),
    transformer_layers_per_block=(1, 2, 10), use_linear_projection=True, cross_attention_dim=2048,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)


def test_released_decoder_fits_the_sdxl_base_unet():
    """Default decoder config + SDXL-base UNet (2,567,463,684 parameters, the released file's size) on meta."""
    with torch.device("meta"):
        decoder = VideoLavitKeyframeDecoder()
        unet = UNet2DConditionModel(**SDXL_BASE_UNET)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4, sample_size=1024,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2, scaling_factor=0.13025)
    assert sum(p.numel() for p in unet.parameters()) == 2_567_463_684
    pipeline = VideoLavitKeyframePipeline(keyframe_decoder=decoder, unet=unet, vae=vae, scheduler=DDIMScheduler())
    assert pipeline.vae_scale_factor == 8 and unet.config.sample_size * pipeline.vae_scale_factor == 1024


@pytest.mark.slow
def test_released_size_decoder_runs_on_cpu():
    torch.manual_seed(0)
    decoder = VideoLavitKeyframeDecoder().eval()
    with torch.no_grad():
        out = decoder(codes=[torch.randint(0, 16384, (90,)), torch.randint(0, 16384, (40,))])
    assert out.prompt_embeds.shape == (2, 256, 2048) and out.pooled_prompt_embeds.shape == (2, 1280)
    assert torch.isfinite(out.prompt_embeds).all() and torch.isfinite(out.pooled_prompt_embeds).all()


def test_conversion_passes_the_pooler_head_count_through(tmp_path):
    """The pooler's head count is not in the weights: `pooler_num_heads` must reach the decoder, else it defaults to
    the decoder's head count and the pooled embedding changes."""
    components = tiny_components(seed=1)
    torch.manual_seed(1)
    decoder = VideoLavitKeyframeDecoder(**{**DECODER, "pooler_num_heads": 4}).eval()
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.3)
    components["keyframe_decoder"] = decoder
    _write_original_checkpoint(tmp_path / "original", components)
    heads = DECODER["num_attention_heads"]
    converted = convert_keyframe_pipeline(tmp_path / "original", tmp_path / "four", num_attention_heads=heads,
                                          pooler_num_heads=4)
    default = convert_keyframe_pipeline(tmp_path / "original", tmp_path / "default", num_attention_heads=heads)
    assert converted.keyframe_decoder.config.pooler_num_heads == 4
    assert default.keyframe_decoder.config.pooler_num_heads == heads
    reloaded = VideoLavitKeyframePipeline.from_pretrained(tmp_path / "four").keyframe_decoder.eval()
    with torch.no_grad():
        expected = decoder(codes=CODES).pooled_prompt_embeds
        torch.testing.assert_close(reloaded(codes=CODES).pooled_prompt_embeds, expected, rtol=0, atol=0)
        assert not torch.allclose(default.keyframe_decoder.eval()(codes=CODES).pooled_prompt_embeds, expected)


def spatial_components(seed=0):
    """The UNet also reads the codes on their patch grid: in_channels = 4 latent + code_dim."""
    components = tiny_components(seed)
    config = dict(components["unet"].config)
    config["in_channels"] = 4 + DECODER["code_dim"]
    torch.manual_seed(seed)
    components["unet"] = UNet2DConditionModel.from_config(config).eval()
    return components


def test_spatial_code_map_is_concatenated_to_the_latents():
    pipe = VideoLavitKeyframePipeline(**spatial_components())
    pipe.set_progress_bar_config(disable=True)
    assert pipe.uses_code_map
    inputs = []
    pipe.unet.register_forward_pre_hook(lambda module, args: inputs.append(args[0].clone()))
    codes = [torch.tensor([1, 5, 9, 13]), torch.tensor([2, 4, 8, 16])]
    images = run(pipe, codes=codes, guidance_scale=2.0)
    assert images.shape == (2, 64, 64, 3)
    expected = pipe.keyframe_decoder.spatial_code_map(codes, (8, 8))
    assert len(inputs) == 2
    for x in inputs:
        assert x.shape == (4, 4 + DECODER["code_dim"], 8, 8)
        assert torch.equal(x[:2, 4:], torch.zeros_like(expected))  # the unconditional half
        torch.testing.assert_close(x[2:, 4:], expected)
    # moving one code on the grid changes the image even though the same codes are drawn
    swapped = [torch.tensor([5, 1, 9, 13]), codes[1]]
    assert np.abs(run(pipe, codes=swapped, guidance_scale=2.0)[0] - images[0]).max() > 1e-4
    np.testing.assert_array_equal(run(pipe, codes=codes, guidance_scale=2.0), images)


def test_spatial_unet_needs_codes_on_a_grid():
    pipe = VideoLavitKeyframePipeline(**spatial_components())
    pipe.set_progress_bar_config(disable=True)
    embeds = pipe.encode_codes([torch.tensor([1, 2, 3, 4])], torch.device("cpu"))
    with pytest.raises(ValueError, match="reads the codes on the patch grid"):
        pipe(prompt_embeds=embeds[0], pooled_prompt_embeds=embeds[1], num_inference_steps=1)
    with pytest.raises(ValueError, match="square grid"):
        run(pipe, codes=[torch.tensor([1, 2, 3])])


def test_unet_channels_must_fit_the_vae_and_the_code_map():
    components = tiny_components()
    config = dict(components["unet"].config)
    config["in_channels"] = 4 + 3
    components["unet"] = UNet2DConditionModel.from_config(config)
    with pytest.raises(ValueError, match="in/out channels 7/4 fit neither the VAE's 4 latent channels"):
        VideoLavitKeyframePipeline(**components)
