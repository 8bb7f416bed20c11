# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""End-to-end Video-LaVIT generation: text -> video, image (+ text) -> video, long video, text -> image.

`VideoLavitPipeline` holds the LLM (`VideoLavitForConditionalGeneration`, which carries the visual and motion
tokenizers), its processor, and the two detokenizers. It composes the two detokenizer pipelines
(`VideoLavitKeyframePipeline`, `VideoLavitReconstructionPipeline`) from its own components at call time instead
of re-implementing their denoising loops, so replacing e.g. `pipe.video_scheduler` takes effect on the next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    DiffusionPipeline,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput, logging, replace_example_docstring

from ..modeling.modeling_keyframe_decoder import VideoLavitKeyframeDecoder
from ..modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
from ..modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from ..modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
from ..processing.processing_video_lavit import VideoLavitProcessor
from .pipeline_video_lavit_keyframe import SIZE_MULTIPLE, VideoLavitKeyframePipeline
from .pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

logger = logging.get_logger(__name__)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> import video_lavit
        >>> from video_lavit.pipelines import VideoLavitPipeline
        >>> from video_lavit.pipelines.video_export import export_to_mp4

        >>> pipe = VideoLavitPipeline.from_pretrained("video-lavit-hf", dtype=torch.float16)
        >>> pipe.enable_model_cpu_offload()
        >>> out = pipe("a sailboat drifting on a calm sea at sunset", num_clips=2,
        ...            generator=torch.Generator().manual_seed(42))
        >>> export_to_mp4(out.frames[0], "sailboat.mp4", fps=6)
        ```
"""


@dataclass
class VideoLavitPipelineOutput(BaseOutput):
    r"""
    Output of [`VideoLavitPipeline.__call__`].

    Args:
        frames (`list[list[PIL.Image.Image]]`, `np.ndarray` of shape `(batch, T, height, width, 3)` or
            `torch.Tensor` of shape `(batch, T, 3, height, width)`, values in [0, 1]): the videos, with
            `T = num_clips * F - (num_clips - 1)` (`F` = frames per clip, 24): every clip after the first drops its
            first frame, as the original notebook stitches long videos.
        keyframes (same container types, shapes `(batch, num_clips, keyframe_height, keyframe_width, 3)` /
            `(batch, num_clips, 3, keyframe_height, keyframe_width)`): the keyframe of every clip at the keyframe
            resolution, before it is resized to the video size. For image-to-video, clip 0 is the given image.
        keyframe_token_ids (`list[list[torch.LongTensor]]`): `[sample][clip]` LLM ids of each keyframe (`[T_k]`).
        motion_token_ids (`torch.LongTensor` of shape `(batch, num_clips, motion_tokens_per_clip)`): LLM ids of the
            motion tokens of each clip (135 per clip for the released model).
    """

    frames: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor
    keyframes: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor | None = None
    keyframe_token_ids: list | None = None
    motion_token_ids: torch.LongTensor | None = None


@dataclass
class VideoLavitImagePipelineOutput(BaseOutput):
    r"""
    Output of [`VideoLavitPipeline.generate_image`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` `(batch, height, width, 3)` or `torch.Tensor`
            `(batch, 3, height, width)`, values in [0, 1]).
        image_token_ids (`list[torch.LongTensor]`): per sample, the LLM ids of the image (`[T]`).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    image_token_ids: list | None = None


def _to_pil_list(image, name: str = "image") -> list[PIL.Image.Image]:
    """A PIL image / list of PIL images / array `[(B,) H, W, 3]` / tensor `[(B,) 3, H, W]` in [0, 1] -> RGB PILs."""
    if isinstance(image, PIL.Image.Image):
        return [image.convert("RGB")]
    if isinstance(image, (list, tuple)) and image and all(isinstance(i, PIL.Image.Image) for i in image):
        return [i.convert("RGB") for i in image]
    if isinstance(image, np.ndarray) and image.ndim in (3, 4) and image.shape[-1] == 3:
        array = image[None] if image.ndim == 3 else image
        if array.dtype == np.uint8:
            return [PIL.Image.fromarray(a) for a in array]
        if np.issubdtype(array.dtype, np.floating) and array.min() >= 0 and array.max() <= 1:
            return VaeImageProcessor.numpy_to_pil(array)
        raise ValueError(f"{name} arrays must be uint8 or float in [0, 1], got {array.dtype} in "
                         f"[{float(array.min()):.3g}, {float(array.max()):.3g}]")
    if isinstance(image, torch.Tensor) and image.ndim in (3, 4) and image.shape[-3] == 3:
        tensor = (image[None] if image.ndim == 3 else image).detach().float().cpu()
        if tensor.min() < 0 or tensor.max() > 1:
            low, high = float(tensor.min()), float(tensor.max())
            raise ValueError(f"{name} tensors must lie in [0, 1], got [{low:.3g}, {high:.3g}]")
        return VaeImageProcessor.numpy_to_pil(VaeImageProcessor.pt_to_numpy(tensor))
    shape = f" of shape {tuple(image.shape)}" if hasattr(image, "shape") else ""
    raise TypeError(
        f"{name} must be a PIL image, a list of PIL images, an array [(B,) H, W, 3] or a tensor [(B,) 3, H, W], "
        f"got {type(image).__name__}{shape}"
    )


def _normalize_prompt(prompt) -> list[str] | None:
    if prompt is None:
        return None
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}")
    empty = [i for i, p in enumerate(prompts) if not p.strip()]
    if empty:
        raise ValueError(f"prompt {empty[0]} is empty; give a description of the video or image to generate")
    return list(prompts)


def _images_to_output(images: list[PIL.Image.Image], output_type: str):
    """PIL images of one size -> the list itself, `np.ndarray [N, H, W, 3]` or `torch.Tensor [N, 3, H, W]`."""
    if output_type == "pil":
        return images
    array = VaeImageProcessor.pil_to_numpy(images)
    return array if output_type == "np" else VaeImageProcessor.numpy_to_pt(array)


class VideoLavitPipeline(DiffusionPipeline):
    r"""
    Video-LaVIT generation: the LLM writes keyframe tokens and motion tokens for every clip, the keyframe detokenizer
    turns keyframe tokens into an image, and the video detokenizer turns that keyframe plus the decoded motion into
    a clip of frames. Long videos keep every earlier clip in the LLM context and start each later keyframe from the
    re-noised last frame of the previous clip (the original's "noise constraint").

    Components:
        language_model ([`VideoLavitForConditionalGeneration`]): the LLM, with the visual tokenizer (image-to-video
            prompts) and the motion tokenizer (motion tokens -> motion fields) inside.
        processor ([`VideoLavitProcessor`]): its tokenizer encodes prompts (without BOS, as the original), its image
            processor prepares image-to-video inputs for the visual tokenizer.
        keyframe_decoder, keyframe_unet, keyframe_vae, keyframe_scheduler: the keyframe detokenizer
            ([`VideoLavitKeyframePipeline`]).
        video_unet, motion_encoder, video_vae, video_scheduler: the video detokenizer
            ([`VideoLavitReconstructionPipeline`]).
        motion_tokenizer ([`VideoLavitMotionTokenizer`], *optional*): decodes motion tokens; defaults to
            `language_model.motion_tokenizer` (the same weights, so a second copy is normally not stored).

    Config values (stored in `model_index.json`): `keyframe_height` / `keyframe_width` (576 x 1024) and
    `video_height` / `video_width` (512 x 896): the default sizes, those of the released text-to-video notebook.
    Keyframes are decoded at the keyframe size and bicubic-resized (aspect not kept) to the video size.
    """

    model_cpu_offload_seq = (
        "language_model->motion_tokenizer->keyframe_decoder->keyframe_unet->keyframe_vae->motion_encoder->video_unet"
        "->video_vae"
    )
    _optional_components = ["motion_tokenizer"]
    # the tensors both denoising loops can hand to `callback_on_step_end`
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        language_model: VideoLavitForConditionalGeneration,
        processor: VideoLavitProcessor,
        keyframe_decoder: VideoLavitKeyframeDecoder,
        keyframe_unet: UNet2DConditionModel,
        keyframe_vae: AutoencoderKL,
        keyframe_scheduler: DDIMScheduler | EulerAncestralDiscreteScheduler,
        video_unet: VideoLavitUNetSpatioTemporalConditionModel,
        motion_encoder: VideoLavitMotionConditionEncoder,
        video_vae: AutoencoderKLTemporalDecoder,
        video_scheduler: EulerDiscreteScheduler,
        motion_tokenizer: VideoLavitMotionTokenizer | None = None,
        keyframe_height: int = 576,
        keyframe_width: int = 1024,
        video_height: int = 512,
        video_width: int = 896,
    ):
        super().__init__()
        self.register_modules(
            language_model=language_model,
            processor=processor,
            keyframe_decoder=keyframe_decoder,
            keyframe_unet=keyframe_unet,
            keyframe_vae=keyframe_vae,
            keyframe_scheduler=keyframe_scheduler,
            video_unet=video_unet,
            motion_encoder=motion_encoder,
            video_vae=video_vae,
            video_scheduler=video_scheduler,
            motion_tokenizer=motion_tokenizer,
        )
        self.register_to_config(
            keyframe_height=keyframe_height, keyframe_width=keyframe_width,
            video_height=video_height, video_width=video_width,
        )
        self._check_components()
        self._stage = None
        self._clip_index = None

    # ------------------------------------------------------------------------------------------ components

    def _check_components(self) -> None:
        """The detokenizers must read the LLM's codebooks: same visual / motion code counts and clip length."""
        llm_config = self.language_model.config
        decoder_codes = self.keyframe_decoder.config.codebook_size
        if decoder_codes != llm_config.visual_vocab_size:
            raise ValueError(
                f"keyframe_decoder.codebook_size ({decoder_codes}) != the LLM's visual codebook size "
                f"({llm_config.visual_vocab_size})"
            )
        motion_config = self.motion_detokenizer.config
        if (motion_config.codebook_size, motion_config.num_motion_tokens) != (
            llm_config.motion_vocab_size,
            llm_config.num_motion_tokens,
        ):
            raise ValueError(
                f"motion_tokenizer has {motion_config.codebook_size} codes and {motion_config.num_motion_tokens} "
                f"tokens per clip, the LLM {llm_config.motion_vocab_size} and {llm_config.num_motion_tokens}"
            )

    @property
    def motion_detokenizer(self) -> VideoLavitMotionTokenizer:
        """The motion tokenizer that decodes motion tokens: `motion_tokenizer` if given, else the LLM's."""
        return self.motion_tokenizer if self.motion_tokenizer is not None else self.language_model.motion_tokenizer

    def _sub_pipeline(self, pipeline_class, **components):
        """`pipeline_class` over some of this pipeline's components (shared, not copied), with its progress bar
        settings."""
        pipe = pipeline_class(**components)
        pipe.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipe

    @property
    def keyframe_pipeline(self) -> VideoLavitKeyframePipeline:
        """A [`VideoLavitKeyframePipeline`] over this pipeline's keyframe components (shared, not copied)."""
        return self._sub_pipeline(
            VideoLavitKeyframePipeline, keyframe_decoder=self.keyframe_decoder, unet=self.keyframe_unet,
            vae=self.keyframe_vae, scheduler=self.keyframe_scheduler,
        )

    @property
    def video_pipeline(self) -> VideoLavitReconstructionPipeline:
        """A [`VideoLavitReconstructionPipeline`] over this pipeline's video components (shared, not copied)."""
        return self._sub_pipeline(
            VideoLavitReconstructionPipeline, vae=self.video_vae, unet=self.video_unet,
            scheduler=self.video_scheduler, motion_encoder=self.motion_encoder,
        )

    @classmethod
    def from_parts(
        cls,
        language_model: str | Path | VideoLavitForConditionalGeneration,
        keyframe_pipeline: str | Path | VideoLavitKeyframePipeline,
        video_pipeline: str | Path | VideoLavitReconstructionPipeline,
        processor: str | Path | VideoLavitProcessor | None = None,
        motion_tokenizer: VideoLavitMotionTokenizer | None = None,
        dtype: torch.dtype | None = None,
        **config,
    ) -> "VideoLavitPipeline":
        """Assemble the pipeline from the separately saved / converted parts.

        Args:
            language_model: a `VideoLavitForConditionalGeneration` or its `save_pretrained` folder (e.g. the output
                of `video_lavit.conversion.convert_language_model`).
            keyframe_pipeline / video_pipeline: a [`VideoLavitKeyframePipeline`] / [`VideoLavitReconstructionPipeline`]
                or its `save_pretrained` folder (outputs of `convert_keyframe_decoder` / `convert_video_detokenizer`).
            processor: a `VideoLavitProcessor` or its folder; defaults to the `language_model` folder.
            motion_tokenizer: optional separate motion tokenizer (default: the LLM's).
            dtype: loading dtype of every model given as a folder.
            **config: `keyframe_height`, `keyframe_width`, `video_height`, `video_width`.
        """
        loading = {} if dtype is None else {"dtype": dtype}
        if processor is None:
            if not isinstance(language_model, (str, Path)):
                raise ValueError("pass `processor` when `language_model` is a model object rather than a folder")
            processor = language_model
        if isinstance(processor, (str, Path)):
            processor = VideoLavitProcessor.from_pretrained(processor)
        if isinstance(language_model, (str, Path)):
            language_model = VideoLavitForConditionalGeneration.from_pretrained(language_model, **loading)
        if isinstance(keyframe_pipeline, (str, Path)):
            keyframe_pipeline = VideoLavitKeyframePipeline.from_pretrained(keyframe_pipeline, **loading)
        if isinstance(video_pipeline, (str, Path)):
            video_pipeline = VideoLavitReconstructionPipeline.from_pretrained(video_pipeline, **loading)
        return cls(
            language_model=language_model.eval(),
            processor=processor,
            keyframe_decoder=keyframe_pipeline.keyframe_decoder,
            keyframe_unet=keyframe_pipeline.unet,
            keyframe_vae=keyframe_pipeline.vae,
            keyframe_scheduler=keyframe_pipeline.scheduler,
            video_unet=video_pipeline.unet,
            motion_encoder=video_pipeline.motion_encoder,
            video_vae=video_pipeline.vae,
            video_scheduler=video_pipeline.scheduler,
            motion_tokenizer=motion_tokenizer,
            **config,
        )

    # ------------------------------------------------------------------------------------------ state for callbacks

    @property
    def stage(self) -> str | None:
        """`"keyframe"` or `"video"` while a denoising loop runs (read it in `callback_on_step_end`), else `None`."""
        return self._stage

    @property
    def clip_index(self) -> int | None:
        """Index of the clip being decoded while a denoising loop runs, else `None`."""
        return self._clip_index

    # ------------------------------------------------------------------------------------------ inputs

    def _check_size(self, height, width, what: str, multiple: int = SIZE_MULTIPLE) -> None:
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value % multiple:
                raise ValueError(f"{what} {name} must be a positive multiple of {multiple}, got {value!r}")

    @staticmethod
    def _check_steps(value, name: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")

    def _check_common(self, output_type, generator, callback_on_step_end_tensor_inputs) -> None:
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                "generator must be one torch.Generator (it drives the LLM sampling and both diffusion stages in turn), "
                f"got {type(generator).__name__}"
            )
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} are not among {self._callback_tensor_inputs}"
            )

    def check_inputs(
        self, prompts, images, num_clips, height, width, keyframe_height, keyframe_width, num_inference_steps,
        keyframe_num_inference_steps, keyframe_inverse_rate, output_type, generator, callback_on_step_end_tensor_inputs,
    ) -> None:
        if prompts is None and images is None:
            raise ValueError("pass a `prompt` (text-to-video), an `image` (image-to-video) or both")
        if prompts is not None and images is not None and len(prompts) != len(images):
            raise ValueError(f"got {len(prompts)} prompts but {len(images)} images; give one image per prompt")
        max_clips = self.language_model.config.max_clips
        if not isinstance(num_clips, int) or isinstance(num_clips, bool) or not 1 <= num_clips <= max_clips:
            raise ValueError(f"num_clips must be an int in [1, {max_clips}] (the model's max_clips), got {num_clips!r}")
        self._check_size(height, width, "video", max(SIZE_MULTIPLE, self.video_pipeline.size_multiple))
        self._check_size(keyframe_height, keyframe_width, "keyframe")
        self._check_steps(num_inference_steps, "num_inference_steps")
        self._check_steps(keyframe_num_inference_steps, "keyframe_num_inference_steps")
        if not 0.0 <= keyframe_inverse_rate < 1.0:
            raise ValueError(f"keyframe_inverse_rate must be in [0, 1), got {keyframe_inverse_rate}")
        self._check_common(output_type, generator, callback_on_step_end_tensor_inputs)

    # ------------------------------------------------------------------------------------------ encoding

    def encode_prompt(self, prompts: list[str]) -> list[torch.LongTensor]:
        """Prompts -> text ids without BOS/EOS (the original's generation prompts), one 1-D tensor each."""
        encoded = self.processor.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        ids = [torch.tensor(e, dtype=torch.long) for e in encoded]
        text_vocab_size = self.language_model.config.text_vocab_size
        for i, e in enumerate(ids):
            if e.numel() == 0:
                raise ValueError(f"prompt {i} {prompts[i]!r} encodes to no tokens")
            if int(e.max()) >= text_vocab_size:
                # an id added to the tokenizer would land on [IMG] / visual ids of the LLM
                raise ValueError(
                    f"prompt {i} encodes to id {int(e.max())}, outside the LLM's {text_vocab_size} text ids"
                )
        return ids

    def encode_image(self, images: list[PIL.Image.Image], generator: torch.Generator | None) -> list[torch.LongTensor]:
        """Images -> visual codes `[K_i]` with the LLM's visual tokenizer (stochastic token selection)."""
        tokenizer = self.language_model.visual_tokenizer
        pixel_values = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        pixel_values = pixel_values.to(device=tokenizer.device, dtype=tokenizer.dtype)
        return tokenizer.tokenize(pixel_values, generator=_generator_on(generator, tokenizer.device)).token_ids

    def decode_motion(self, motion_codes: torch.LongTensor, height: int, width: int) -> torch.FloatTensor:
        """Motion codes `[B, N, M]` -> motion fields `[B, N, 2, F, height / 8, width / 8]` (detokenizer scale)."""
        tokenizer = self.motion_detokenizer
        scale = self.video_pipeline.vae_scale_factor
        batch, clips = motion_codes.shape[:2]
        codes = motion_codes.flatten(0, 1).to(tokenizer.device)
        motion = tokenizer.reconstruct(codes, size=(height // scale, width // scale))
        return motion.float().reshape(batch, clips, *motion.shape[1:])

    def _check_keyframe_codes(self, codes: list[torch.Tensor], clip: int, keyframe_pipe) -> None:
        limit = self.keyframe_decoder.config.num_queries
        if keyframe_pipe.uses_code_map:
            # the code map lays the codes on the full patch grid: only a whole grid fits
            for sample, c in enumerate(codes):
                if c.numel() != limit:
                    raise ValueError(
                        f"the LLM produced {c.numel()} visual codes for the keyframe of clip {clip} (sample {sample}); "
                        f"this keyframe UNet reads them on the patch grid and needs exactly {limit}: set the keyframe "
                        f"stage's min_new_tokens and max_new_tokens to {limit}"
                    )
            return
        for sample, c in enumerate(codes):
            if not 1 <= c.numel() <= limit:
                raise ValueError(
                    f"the LLM produced {c.numel()} visual codes for the keyframe of clip {clip} (sample {sample}); the "
                    f"keyframe decoder takes 1 to {limit}. Try another seed or limit the keyframe stage's "
                    "max_new_tokens"
                )

    def _llm_generator(self, generator):
        device = self._execution_device if hasattr(self.language_model, "_hf_hook") else self.language_model.device
        return _generator_on(generator, device)

    def _stage_callback(self, callback):
        """Adapts a user callback to a sub-pipeline: it receives this pipeline, whose `stage` / `clip_index` say
        which loop is running, instead of the sub-pipeline."""
        if callback is None:
            return None

        def forward(_, step, timestep, callback_kwargs):
            return callback(self, step, timestep, callback_kwargs)

        return forward

    # ------------------------------------------------------------------------------------------ generation

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image=None,
        num_clips: int = 1,
        height: int | None = None,
        width: int | None = None,
        keyframe_height: int | None = None,
        keyframe_width: int | None = None,
        num_inference_steps: int = 25,
        keyframe_num_inference_steps: int = 50,
        llm_guidance_scale: float = 4.0,
        motion_guidance_scale: float = 7.0,
        keyframe_guidance_scale: float = 7.0,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 4.0,
        top_k: int | None = 50,
        top_p: float = 1.0,
        temperature: float = 1.0,
        do_sample_motion: bool | None = None,
        max_new_tokens: int | tuple[int, int] = 500,
        min_new_tokens: int | tuple[int, int] = 20,
        keyframe_inverse_rate: float = 0.9,
        fps: int = 6,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int = 8,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ):
        r"""
        Text-to-video (`prompt`), image-to-video (`image`), text + image -> video (both), and long video
        (`num_clips > 1`).

        Args:
            prompt (`str` or `list[str]`, *optional*): one description per video, encoded without BOS.
            image (PIL image, list of PIL images, array `[(B,) H, W, 3]` or tensor `[(B,) 3, H, W]` in [0, 1],
                *optional*): image-to-video. The image is tokenized at 224 px for the LLM prompt
                (`[prompt] [IMG] codes [/IMG] [MOV]`), and the image itself, bicubic-resized to the video size, is the
                first clip's keyframe.
            num_clips (`int`, defaults to 1): 24-frame clips per video, at most `language_model.config.max_clips`
                (16); the original notes that quality degrades beyond 3.
            height, width (`int`, defaults to the config's `video_height` x `video_width`, 512 x 896): video size,
                multiples of 64.
            keyframe_height, keyframe_width (`int`, defaults to `keyframe_height` x `keyframe_width`, 576 x 1024):
                size the keyframes are decoded at before the resize to the video size; multiples of 64.
            num_inference_steps (`int`, defaults to 25): Euler steps of the video detokenizer.
            keyframe_num_inference_steps (`int`, defaults to 50): steps of the keyframe detokenizer.
            llm_guidance_scale (`float`, defaults to 4.0): LLM classifier-free guidance of the keyframe tokens.
            motion_guidance_scale (`float`, defaults to 7.0): LLM classifier-free guidance of the motion tokens.
            keyframe_guidance_scale (`float`, defaults to 7.0, the notebooks' value): keyframe U-Net guidance.
            min_guidance_scale, max_guidance_scale (`float`, defaults to 1.0 and 4.0): video U-Net guidance, linear
                from the first to the last frame.
            top_k, top_p, temperature: sampling of the keyframe tokens (and of the motion tokens when sampled).
            do_sample_motion (`bool`, *optional*): `None` = the original: greedy motion tokens for text-to-video,
                sampled when an image is given.
            max_new_tokens, min_new_tokens (`int` or `(keyframe, motion)` pair, defaults to 500 / 20): LLM limits
                per stage.
            keyframe_inverse_rate (`float`, defaults to 0.9, the long-video notebook's value): clips after the first
                start their keyframe from the previous clip's last frame, VAE-encoded and forward-noised to step
                `int(rate * keyframe_num_inference_steps)`; only the remaining steps run.
            fps, motion_bucket_id, noise_aug_strength, decode_chunk_size: video detokenizer settings (6, 127, 0.02, 8).
            generator (`torch.Generator`, *optional*): makes the whole call reproducible; consumed in order by the
                image tokenization, the LLM sampling (a generator on another device than the LLM seeds a derived
                one), then per clip by the keyframe and the video diffusion.
            output_type (`"pil"`, `"np"` or `"pt"`), return_dict (`bool`).
            callback_on_step_end: `fn(pipe, step, timestep, tensors) -> dict` called after every step of both
                denoising loops; `pipe.stage` (`"keyframe"` / `"video"`) and `pipe.clip_index` tell which loop.
                A returned `"latents"` replaces the current latents.
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`).

        Examples:

        Returns:
            [`VideoLavitPipelineOutput`] or the tuple `(frames, keyframes, keyframe_token_ids, motion_token_ids)`.
        """
        # 0. Defaults and inputs
        height = self.config.video_height if height is None else height
        width = self.config.video_width if width is None else width
        keyframe_height = self.config.keyframe_height if keyframe_height is None else keyframe_height
        keyframe_width = self.config.keyframe_width if keyframe_width is None else keyframe_width
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        prompts = _normalize_prompt(prompt)
        images = None if image is None else _to_pil_list(image)
        self.check_inputs(
            prompts, images, num_clips, height, width, keyframe_height, keyframe_width, num_inference_steps,
            keyframe_num_inference_steps, keyframe_inverse_rate, output_type, generator,
            callback_on_step_end_tensor_inputs,
        )
        if num_clips > 3:
            logger.warning(f"num_clips={num_clips}: the released model was trained on short videos; quality degrades "
                           "beyond 3 clips")
        show_progress = not getattr(self, "_progress_bar_config", {}).get("disable", False)

        # 1. Encode the prompt (text ids without BOS) and the image (visual codes)
        input_ids = self.encode_prompt(prompts) if prompts is not None else None
        image_codes = self.encode_image(images, generator) if images is not None else None

        # 2. LLM: keyframe tokens then motion tokens of every clip, each clip conditioned on all earlier ones. A
        #    keyframe UNet reading the code map needs the whole patch grid, so the LLM then emits codes only (the
        #    special ids the original allows are deleted afterwards and would leave a hole in the grid)
        keyframe_pipe, video_pipe = self.keyframe_pipeline, self.video_pipeline
        tokens = self.language_model.generate_video_tokens(
            input_ids=input_ids, num_clips=num_clips, image_token_ids=image_codes,
            guidance_scale_image=llm_guidance_scale, guidance_scale_motion=motion_guidance_scale,
            generator=self._llm_generator(generator), do_sample_motion=do_sample_motion, top_k=top_k, top_p=top_p,
            temperature=temperature, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            show_progress=show_progress, codes_only=keyframe_pipe.uses_code_map,
        )

        # 3. Motion tokens -> motion fields at the video latent size
        motion = self.decode_motion(tokens.motion_codes, height, width)

        # 4. Per clip: keyframe image, then the clip's frames
        batch_size = motion.shape[0]
        keyframes, clips, last_frames = [], [], None
        for clip in range(num_clips):
            if clip == 0 and images is not None:
                # image-to-video: the given image is the first keyframe, not a re-decoded one
                keyframe = [im.resize((keyframe_width, keyframe_height), PIL.Image.BICUBIC) for im in images]
                video_keyframe = [im.resize((width, height), PIL.Image.BICUBIC) for im in images]
            else:
                codes = [tokens.keyframe_codes[b][clip] for b in range(batch_size)]
                self._check_keyframe_codes(codes, clip, keyframe_pipe)
                self._stage, self._clip_index = "keyframe", clip
                keyframe = keyframe_pipe(
                    codes=codes, height=keyframe_height, width=keyframe_width,
                    num_inference_steps=keyframe_num_inference_steps, guidance_scale=keyframe_guidance_scale,
                    generator=generator, image=last_frames, image_inverse_rate=keyframe_inverse_rate,
                    output_type="pil", callback_on_step_end=self._stage_callback(callback_on_step_end),
                    callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                ).images
                video_keyframe = [im.resize((width, height), PIL.Image.BICUBIC) for im in keyframe]

            self._stage, self._clip_index = "video", clip
            frames = video_pipe(
                video_keyframe, motion=motion[:, clip], height=height, width=width,
                num_inference_steps=num_inference_steps, min_guidance_scale=min_guidance_scale,
                max_guidance_scale=max_guidance_scale, fps=fps, motion_bucket_id=motion_bucket_id,
                noise_aug_strength=noise_aug_strength, decode_chunk_size=decode_chunk_size, generator=generator,
                output_type="pt", callback_on_step_end=self._stage_callback(callback_on_step_end),
                callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            ).frames  # [B, F, 3, H, W] in [0, 1]
            keyframes.append(keyframe)
            # later clips start on the previous clip's last frame, so that frame is dropped from them
            clips.append(frames if clip == 0 else frames[:, 1:])
            # the original hands the last frame over as an 8-bit PIL image
            last_frames = VaeImageProcessor.numpy_to_pil(VaeImageProcessor.pt_to_numpy(frames[:, -1].float().cpu()))
        self._stage = self._clip_index = None

        # 5. Stitch and convert
        video = torch.cat(clips, dim=1).float().cpu()
        if output_type == "pt":
            out_frames = video
        else:
            array = video.permute(0, 1, 3, 4, 2).numpy()
            out_frames = array if output_type == "np" else [VaeImageProcessor.numpy_to_pil(v) for v in array]
        per_sample = [[keyframes[c][b] for c in range(num_clips)] for b in range(batch_size)]
        if output_type == "pil":
            out_keyframes = per_sample
        else:
            converted = [_images_to_output(k, output_type) for k in per_sample]
            out_keyframes = np.stack(converted) if output_type == "np" else torch.stack(converted)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (out_frames, out_keyframes, tokens.keyframe_token_ids, tokens.motion_token_ids)
        return VideoLavitPipelineOutput(
            frames=out_frames, keyframes=out_keyframes, keyframe_token_ids=tokens.keyframe_token_ids,
            motion_token_ids=tokens.motion_token_ids,
        )

    @torch.no_grad()
    def generate_image(
        self,
        prompt: str | list[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        llm_guidance_scale: float = 4.0,
        guidance_scale: float = 7.0,
        top_k: int | None = 50,
        top_p: float = 1.0,
        temperature: float = 1.0,
        max_new_tokens: int = 200,
        min_new_tokens: int = 20,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ):
        r"""
        Text-to-image: the LLM writes keyframe tokens for `prompt ‖ [IMG]` (at most `max_new_tokens`, 200 as the
        original), the keyframe detokenizer decodes them.

        Args:
            prompt (`str` or `list[str]`): one description per image.
            height, width (`int`, default to the config's keyframe size): multiples of 64; the original lists
                1024x1024, 896x1152, 832x1216, 768x1344, 1216x832, 1152x896, 576x1024 (height x width).
            num_inference_steps (`int`, defaults to 50), guidance_scale (`float`, defaults to 7.0): keyframe U-Net.
            llm_guidance_scale (`float`, defaults to 4.0), top_k / top_p / temperature, max_new_tokens /
                min_new_tokens: the LLM's keyframe-token sampling.
            generator, output_type, return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs: as in
                [`~VideoLavitPipeline.__call__`] (`stage` is `"keyframe"`, `clip_index` 0).

        Returns:
            [`VideoLavitImagePipelineOutput`] or the tuple `(images, image_token_ids)`.
        """
        height = self.config.keyframe_height if height is None else height
        width = self.config.keyframe_width if width is None else width
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        prompts = _normalize_prompt(prompt)
        if prompts is None:
            raise ValueError("generate_image needs a `prompt`")
        self._check_size(height, width, "image")
        self._check_steps(num_inference_steps, "num_inference_steps")
        self._check_common(output_type, generator, callback_on_step_end_tensor_inputs)

        keyframe_pipe = self.keyframe_pipeline
        tokens = self.language_model.generate_image_tokens(
            input_ids=self.encode_prompt(prompts), guidance_scale=llm_guidance_scale, do_sample=True, top_k=top_k,
            top_p=top_p, temperature=temperature, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            generator=self._llm_generator(generator), codes_only=keyframe_pipe.uses_code_map,
        )
        self._check_keyframe_codes(tokens.image_codes, 0, keyframe_pipe)
        self._stage, self._clip_index = "keyframe", 0
        images = keyframe_pipe(
            codes=tokens.image_codes, height=height, width=width, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, generator=generator, output_type=output_type,
            callback_on_step_end=self._stage_callback(callback_on_step_end),
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        ).images
        self._stage = self._clip_index = None

        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, tokens.image_token_ids)
        return VideoLavitImagePipelineOutput(images=images, image_token_ids=tokens.image_token_ids)


def _generator_on(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """`generator` if it lives on `device`'s type, else a generator there seeded by one draw from `generator`
    (sampling kernels need a generator on the tensors' device; the draw keeps the result reproducible)."""
    if generator is None or generator.device.type == torch.device(device).type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator(device=device).manual_seed(seed)


__all__ = ["VideoLavitImagePipelineOutput", "VideoLavitPipeline", "VideoLavitPipelineOutput"]
