# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""A complete miniature Video-LaVIT (random weights) for tests, examples and smoke runs, built in one call.

`build_tiny_video_lavit(folder)` writes a `VideoLavitPipeline` folder (`model_index.json` plus one subfolder per
component) that holds every part of the system:

* `language_model/`: a `VideoLavitForConditionalGeneration` (2-layer Llama, hidden 32) with its visual tokenizer
  (28-px images, 32 visual codes) and motion tokenizer (released clip geometry: 24 frames, 135 tokens, 16 codes);
* `processor/`: a `VideoLavitProcessor` (tiny byte-fallback Llama tokenizer, 28-px image / video processors);
* `keyframe_decoder/`, `keyframe_unet/`, `keyframe_vae/`, `keyframe_scheduler/`: the keyframe detokenizer;
* `video_unet/`, `motion_encoder/`, `video_vae/`, `video_scheduler/`: the video detokenizer.

Default sizes are tiny (keyframe 64 x 128, video 64 x 64, height x width) and stored in `model_index.json`, so a
plain `pipe(prompt)` runs in seconds on a CPU. The language model (with the processor) also loads on its own:
`VideoLavitForConditionalGeneration.from_pretrained(folder / "language_model")`,
`VideoLavitProcessor.from_pretrained(folder / "processor")`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
)

from .conversion.convert_video_detokenizer import SVD_SCHEDULER_CONFIG
from .modeling.configuration_video_lavit import VideoLavitConfig
from .modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from .modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from .modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from .modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
from .pipelines.pipeline_video_lavit import VideoLavitPipeline
from .processing.image_processing_video_lavit import VideoLavitImageProcessor
from .processing.processing_video_lavit import VideoLavitProcessor
from .processing.tokenizer_utils import build_tiny_llama_tokenizer
from .processing.video_processing_video_lavit import VideoLavitVideoProcessor

TINY_IMAGE_SIZE = 28
TINY_VISUAL_CODES = 32
TINY_MOTION_CODES = 16
TINY_HIDDEN = 32
TINY_MAX_CLIPS = 4
TINY_KEYFRAME_SIZE = (64, 128)  # (height, width)
TINY_VIDEO_SIZE = (64, 64)
# The keyframe decoder accepts up to this many codes: more than the keyframe stage's default max_new_tokens (500),
# so a random LLM can never produce a keyframe the decoder refuses.
TINY_KEYFRAME_QUERIES = 512
TINY_DECODER_PROMPT_DIMS = (12, 20)
TINY_TIME_EMBED = 4


def _randomize(module: torch.nn.Module, std: float) -> None:
    """Random weights everywhere, so that no conditioning path is a no-op through zero initialisation."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)


def build_tiny_processor() -> VideoLavitProcessor:
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    return VideoLavitProcessor(
        image_processor=VideoLavitImageProcessor(size=size),
        video_processor=VideoLavitVideoProcessor(size=size),
        tokenizer=build_tiny_llama_tokenizer(),
    )


def build_tiny_language_model(text_vocab_size: int) -> VideoLavitForConditionalGeneration:
    """A 2-layer Llama with tiny visual and motion tokenizers (released motion clip geometry: 24 frames, 135 ids)."""
    visual = dict(
        image_size=TINY_IMAGE_SIZE, patch_size=14, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=2,
        merger_intermediate_size=64, codebook_size=TINY_VISUAL_CODES, code_dim=8, projection_dim=TINY_HIDDEN,
    )
    motion = dict(
        hidden_size=16, num_attention_heads=2, encoder_blocks_per_stage=(1, 1, 1, 1),
        decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=TINY_MOTION_CODES, code_dim=8,
    )
    text = dict(
        model_type="llama", vocab_size=text_vocab_size + 2 + TINY_VISUAL_CODES + 2 + TINY_MOTION_CODES,
        hidden_size=TINY_HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    config = VideoLavitConfig(
        text_config=text, visual_tokenizer_config=visual, motion_tokenizer_config=motion,
        text_vocab_size=text_vocab_size, max_clips=TINY_MAX_CLIPS,
    )
    return VideoLavitForConditionalGeneration(config).eval()


def build_tiny_keyframe_components() -> dict:
    decoder = VideoLavitKeyframeDecoder(
        codebook_size=TINY_VISUAL_CODES, code_dim=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=24, num_queries=TINY_KEYFRAME_QUERIES, feature_dim=16,
        prompt_embed_dims=TINY_DECODER_PROMPT_DIMS, pooled_embed_dim=20, pooler_num_heads=2,
    )
    _randomize(decoder, 0.3)
    unet = UNet2DConditionModel(
        sample_size=TINY_KEYFRAME_SIZE[0] // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4), norm_num_groups=8,
        use_linear_projection=True, transformer_layers_per_block=(1, 1),
        cross_attention_dim=sum(TINY_DECODER_PROMPT_DIMS), addition_embed_type="text_time",
        addition_time_embed_dim=TINY_TIME_EMBED, projection_class_embeddings_input_dim=20 + 6 * TINY_TIME_EMBED,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
        sample_size=64, scaling_factor=0.13025,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1, timestep_spacing="leading",
    )
    return dict(keyframe_decoder=decoder.eval(), keyframe_unet=unet.eval(), keyframe_vae=vae.eval(),
                keyframe_scheduler=scheduler)


def build_tiny_video_components() -> dict:
    unet = VideoLavitUNetSpatioTemporalConditionModel(
        sample_size=None,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64), addition_time_embed_dim=8, projection_class_embeddings_input_dim=24,
        layers_per_block=1, cross_attention_dim=16, num_attention_heads=(2, 4), num_frames=24,
    )
    encoder = VideoLavitMotionConditionEncoder(out_channels=16, hidden_size=16, num_attention_heads=2, num_layers=1)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=1,
        latent_channels=4,
    )
    for module in (unet, encoder, vae):
        _randomize(module, 0.1)
    return dict(video_unet=unet.eval(), motion_encoder=encoder.eval(), video_vae=vae.eval(),
                video_scheduler=EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG))


def build_tiny_video_lavit_pipeline(seed: int = 0) -> VideoLavitPipeline:
    """The miniature pipeline in memory (float32, CPU); the same `seed` gives the same weights."""
    torch.manual_seed(seed)
    processor = build_tiny_processor()
    language_model = build_tiny_language_model(len(processor.tokenizer))
    return VideoLavitPipeline(
        language_model=language_model,
        processor=processor,
        **build_tiny_keyframe_components(),
        **build_tiny_video_components(),
        keyframe_height=TINY_KEYFRAME_SIZE[0],
        keyframe_width=TINY_KEYFRAME_SIZE[1],
        video_height=TINY_VIDEO_SIZE[0],
        video_width=TINY_VIDEO_SIZE[1],
    )


def build_tiny_video_lavit(folder: str | Path, seed: int = 0) -> Path:
    """Save the miniature pipeline (every component, safetensors) to `folder`; returns the folder.

    Load it back with `VideoLavitPipeline.from_pretrained(folder)` (after `import video_lavit`).
    """
    folder = Path(folder)
    build_tiny_video_lavit_pipeline(seed).save_pretrained(folder)
    return folder


def build_tiny_converted_video_lavit(folder: str | Path, seed: int = 0) -> Path:
    """The converted-release layout on the miniature: the pipeline folder of `build_tiny_video_lavit` plus a
    different (understanding) model and the processor at the root, as `convert_video_lavit` writes them."""
    folder = build_tiny_video_lavit(folder, seed=seed)
    processor = VideoLavitProcessor.from_pretrained(folder / "processor")
    torch.manual_seed(seed + 1)  # the root (understanding) model differs from the generation one, as in the release
    build_tiny_language_model(len(processor.tokenizer)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_sliding_texture_video(path: str | Path, frames: int = 30, fps: int = 6, seed: int = 0) -> Path:
    """A small 64x48 MPEG-4 video of a random texture sliding left, so that it has motion vectors."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (48, 64 + frames, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, i : i + 64]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return Path(path)


__all__ = [
    "build_tiny_converted_video_lavit",
    "build_tiny_language_model",
    "build_tiny_processor",
    "build_tiny_video_lavit",
    "build_tiny_video_lavit_pipeline",
    "write_sliding_texture_video",
]
