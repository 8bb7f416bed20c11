# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Sizes and builders of the miniature Video-LaVIT trained by :mod:`video_lavit.mini.train`.

Every component is the project's own class at a small config:

* keyframes at 32 x 32 px, 8-px patches (16 visual tokens, all kept), 64 visual codes;
* motion clips at the released 24 frames but an 8 x 8 motion grid -> a 3 x 2 x 2 token grid (12 motion tokens per
  clip), 32 motion codes;
* a 3-layer, 128-wide Llama over a tokenizer holding the dataset's words;
* keyframe detokenizer at 64 x 64 px (AutoencoderKL with a 4x down-sampling, small SDXL-layout UNet that also reads
  the codes laid out on the 4 x 4 patch grid as 16 extra input channels);
* video detokenizer at 64 x 64 px, 24 frames (temporal-decoder VAE with 8x down-sampling, small SVD-style UNet).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder, DDIMScheduler, EulerDiscreteScheduler, UNet2DConditionModel

from ..conversion.convert_video_detokenizer import SVD_SCHEDULER_CONFIG
from ..modeling.configuration_video_lavit import VideoLavitConfig
from ..modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from ..modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from ..modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
from ..processing.chat_template import DEFAULT_SYSTEM_PROMPT
from ..processing.image_processing_video_lavit import VideoLavitImageProcessor
from ..processing.processing_video_lavit import VideoLavitProcessor
from ..processing.tokenizer_utils import build_tiny_llama_tokenizer
from ..processing.video_processing_video_lavit import VideoLavitVideoProcessor
from .data import vocabulary

IMAGE_SIZE = 32
PATCH_SIZE = 8
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
VISUAL_CODES = 64
VISUAL_CODE_DIM = 16
MOTION_SIZE = 8
MOTION_CODES = 32
HIDDEN = 128
MAX_CLIPS = 2
KEYFRAME_SIZE = 64
VIDEO_SIZE = 64
DECODER_PROMPT_DIMS = (32, 32)
DECODER_POOLED_DIM = 32
TIME_EMBED = 8


def mini_words() -> list[str]:
    """The tokenizer's whole words: the dataset's and the default system prompt's (so chat prompts stay short)."""
    system = DEFAULT_SYSTEM_PROMPT.replace(",", " ").replace(".", " ").replace("'", " ").split()
    return sorted(set(vocabulary()) | set(system) | {"USER", "ASSISTANT"})


def build_processor() -> VideoLavitProcessor:
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    return VideoLavitProcessor(
        image_processor=VideoLavitImageProcessor(size=size, crop_size=size),
        video_processor=VideoLavitVideoProcessor(
            size=size, crop_size=size, motion_size={"height": MOTION_SIZE, "width": MOTION_SIZE}, max_clips=MAX_CLIPS
        ),
        tokenizer=build_tiny_llama_tokenizer(mini_words()),
    )


def build_language_model(text_vocab_size: int) -> VideoLavitForConditionalGeneration:
    visual = dict(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, clip_projection_dim=16, merger_num_hidden_layers=1, merger_num_attention_heads=4,
        merger_intermediate_size=128, codebook_size=VISUAL_CODES, code_dim=VISUAL_CODE_DIM, projection_dim=HIDDEN,
    )
    motion = dict(
        height=MOTION_SIZE, width=MOTION_SIZE, hidden_size=32, num_attention_heads=2,
        encoder_blocks_per_stage=(1, 1, 1, 1), decoder_blocks_per_stage=(1, 1, 1, 1), codebook_size=MOTION_CODES,
        code_dim=8, ema_dead_code_threshold=0.9, initializer_range=0.2,
    )
    text = dict(
        model_type="llama", vocab_size=text_vocab_size + 2 + VISUAL_CODES + 2 + MOTION_CODES, hidden_size=HIDDEN,
        intermediate_size=256, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    config = VideoLavitConfig(
        text_config=text, visual_tokenizer_config=visual, motion_tokenizer_config=motion,
        text_vocab_size=text_vocab_size, max_clips=MAX_CLIPS,
    )
    model = VideoLavitForConditionalGeneration(config)
    keep_all_patches(model.model.visual_tokenizer)
    return model


def keep_all_patches(visual_tokenizer) -> None:
    """Make the token selector keep every patch, deterministically: 16 patches need no pruning, and a fixed count
    gives the generation direction a fixed keyframe length."""
    fc3 = visual_tokenizer.token_selector.fc3
    with torch.no_grad():
        fc3.weight.zero_()
        fc3.bias.copy_(torch.tensor([30.0, -30.0]))
    fc3.requires_grad_(False)


def build_keyframe_components() -> dict:
    decoder = VideoLavitKeyframeDecoder(
        codebook_size=VISUAL_CODES, code_dim=VISUAL_CODE_DIM, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, num_queries=NUM_PATCHES, feature_dim=64, prompt_embed_dims=DECODER_PROMPT_DIMS,
        pooled_embed_dim=DECODER_POOLED_DIM, pooler_num_heads=4,
    )
    latent = KEYFRAME_SIZE // 4
    # the codes on their patch grid as extra input channels: through cross-attention alone the small UNet did not
    # learn where each code belongs (blob centre a median 23 px off after 1500 steps from ground-truth codes; 7 px
    # with the code map, same steps)
    unet = UNet2DConditionModel(
        sample_size=latent, in_channels=4 + VISUAL_CODE_DIM, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(4, 8), norm_num_groups=8,
        use_linear_projection=True, transformer_layers_per_block=(1, 1),
        cross_attention_dim=sum(DECODER_PROMPT_DIMS), addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED, projection_class_embeddings_input_dim=DECODER_POOLED_DIM + 6 * TIME_EMBED,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=8,
        sample_size=KEYFRAME_SIZE, scaling_factor=1.0,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1, timestep_spacing="leading", prediction_type="v_prediction",
    )
    return dict(keyframe_decoder=decoder, keyframe_unet=unet, keyframe_vae=vae, keyframe_scheduler=scheduler)


def build_video_components() -> dict:
    unet = VideoLavitUNetSpatioTemporalConditionModel(
        sample_size=None,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64), addition_time_embed_dim=8, projection_class_embeddings_input_dim=24,
        layers_per_block=1, cross_attention_dim=32, num_attention_heads=(2, 4), num_frames=24,
    )
    encoder = VideoLavitMotionConditionEncoder(out_channels=32, hidden_size=32, num_attention_heads=2, num_layers=1)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=1,
        latent_channels=4, scaling_factor=1.0,
    )
    return dict(video_unet=unet, motion_encoder=encoder, video_vae=vae,
                video_scheduler=EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG))


__all__ = [
    "build_keyframe_components",
    "build_language_model",
    "build_processor",
    "build_video_components",
    "keep_all_patches",
    "mini_words",
]
