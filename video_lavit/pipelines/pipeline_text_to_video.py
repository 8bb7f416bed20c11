# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""`transformers.pipeline("text-to-video")`: a transformers `Pipeline` over the diffusers `VideoLavitPipeline`.

transformers 5.23 has no text-to-video task; `import video_lavit` registers this one (and `video-text-to-text`) with
`PIPELINE_REGISTRY`. The factory loads the generation LLM through :class:`VideoLavitGenerationModelLoader` (the
`pt_model` of the task); the pipeline then loads the processor and both detokenizers from the same folder with
`VideoLavitPipeline.from_pretrained(folder, language_model=model)`, so the LLM is read once.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from transformers import Pipeline

from .checkpoint_layout import GENERATION_LLM_SUBFOLDER, is_pipeline_folder, model_loading_kwargs
from .pipeline_video_lavit import VideoLavitPipeline
from .video_export import export_to_gif, export_to_mp4

# `VideoLavitPipeline.__call__` arguments this task sets itself
_RESERVED = {"self", "prompt", "image", "output_type", "return_dict"}
VIDEO_SUFFIXES = {".mp4": export_to_mp4, ".gif": export_to_gif}


class VideoLavitGenerationModelLoader:
    """The `pt_model` of the `text-to-video` task: `from_pretrained(folder)` loads the generation LLM of a
    `VideoLavitPipeline` folder (`folder/language_model`), never a converted folder's root understanding model."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, **kwargs):
        from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

        folder = Path(pretrained_model_name_or_path)
        if not is_pipeline_folder(folder):
            raise ValueError(
                f"text-to-video needs a VideoLavitPipeline folder (with model_index.json); {folder} has none"
            )
        if subfolder not in (None, "", GENERATION_LLM_SUBFOLDER):
            raise ValueError(f"text-to-video reads the LLM from {GENERATION_LLM_SUBFOLDER}/, got subfolder={subfolder!r}")
        return VideoLavitForConditionalGeneration.from_pretrained(
            folder, subfolder=GENERATION_LLM_SUBFOLDER, **model_loading_kwargs(kwargs)
        ).eval()


class VideoLavitTextToVideoPipeline(Pipeline):
    r"""
    Text -> video, image (+ text) -> video and long video with Video-LaVIT, as a `transformers` pipeline.

    ```python
    import video_lavit
    from transformers import pipeline

    pipe = pipeline("text-to-video", model="video-lavit-hf")          # converted folder (see the README)
    out = pipe("a sailboat drifting at sunset", num_clips=2, output_path="sailboat.mp4", fps=8,
               generator=torch.Generator().manual_seed(0))
    out["frames"]          # np.ndarray [T, H, W, 3] in [0, 1], T = 24 * num_clips - (num_clips - 1)
    pipe({"prompt": "waves rolling", "image": "beach.jpg"})           # image (+ text) -> video
    ```

    Inputs: a prompt string, a PIL image (image-to-video), or a dict with `"prompt"` and/or `"image"` (PIL image or
    path); a list of them runs one by one. Call arguments are those of [`VideoLavitPipeline.__call__`] (`num_clips`,
    `num_inference_steps`, `generator`, `max_new_tokens`, ...) plus `output_path` (write `.mp4` or `.gif`), `fps`
    (of the written file, default 6: the video detokenizer's) and `output_type` (`"np"` default, `"pil"`, `"pt"`).
    Unknown arguments raise `TypeError`.

    Returns a dict: `frames`, `keyframes` (one per clip), `keyframe_token_ids` (`[clip]` LongTensors),
    `motion_token_ids` (`LongTensor [num_clips, 135]`, LLM ids) and `video_path` (only with `output_path`).

    Args:
        model: the generation `VideoLavitForConditionalGeneration` (its `name_or_path` must be the pipeline folder)
            or a loaded `VideoLavitPipeline`.
        video_pipeline (`VideoLavitPipeline`, *optional*): reuse a loaded pipeline instead of reading the folder.
    """

    _load_processor = False
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, model, video_pipeline: VideoLavitPipeline | None = None, **kwargs):
        if isinstance(model, VideoLavitPipeline):
            if video_pipeline is not None and video_pipeline is not model:
                raise ValueError("pass the VideoLavitPipeline either as `model` or as `video_pipeline`, not two")
            video_pipeline, model = model, model.language_model
        if video_pipeline is None:
            folder = getattr(model, "name_or_path", None)
            if not folder or not is_pipeline_folder(folder):
                raise ValueError(
                    "text-to-video needs the detokenizers: give a VideoLavitPipeline folder as `model`, or "
                    f"`video_pipeline=`; the model's folder {folder!r} has no model_index.json"
                )
            dtype = kwargs.get("dtype")
            loading = {"dtype": dtype} if isinstance(dtype, torch.dtype) else {}
            video_pipeline = VideoLavitPipeline.from_pretrained(folder, language_model=model, **loading)
        elif video_pipeline.language_model is not model:
            raise ValueError("video_pipeline.language_model must be the pipeline's `model`")
        self.video_pipeline = video_pipeline
        kwargs.setdefault("processor", video_pipeline.processor)
        super().__init__(model=model, **kwargs)
        self.video_pipeline.to(self.device)

    def _sanitize_parameters(self, output_path=None, fps=None, output_type=None, **call_kwargs):
        accepted = set(inspect.signature(VideoLavitPipeline.__call__).parameters) - _RESERVED
        unknown = sorted(set(call_kwargs) - accepted)
        if unknown:
            raise TypeError(f"text-to-video got unexpected arguments {unknown}; accepted: {sorted(accepted)}")
        postprocess = {}
        if output_path is not None:
            suffix = Path(output_path).suffix.lower()
            if suffix not in VIDEO_SUFFIXES:
                raise ValueError(f"output_path must end in {sorted(VIDEO_SUFFIXES)}, got {str(output_path)!r}")
            postprocess["output_path"] = str(output_path)
        if fps is not None:
            postprocess["fps"] = fps
        if output_type is not None:
            if output_type not in ("np", "pil", "pt"):
                raise ValueError(f"output_type must be 'np', 'pil' or 'pt', got {output_type!r}")
            postprocess["output_type"] = output_type
        return {}, call_kwargs, postprocess

    def preprocess(self, inputs) -> dict:
        if isinstance(inputs, str):
            return {"prompt": inputs, "image": None}
        if isinstance(inputs, PIL.Image.Image):
            return {"prompt": None, "image": inputs.convert("RGB")}
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - {"prompt", "image"})
            if unknown or not inputs:
                raise ValueError(f"text-to-video inputs take the keys 'prompt' and/or 'image', got {sorted(inputs)}")
            image = inputs.get("image")
            if isinstance(image, (str, Path)):
                image = PIL.Image.open(image)
            if image is not None and not isinstance(image, PIL.Image.Image):
                raise TypeError(f"'image' must be a PIL image or a path, got {type(image).__name__}")
            return {"prompt": inputs.get("prompt"), "image": None if image is None else image.convert("RGB")}
        raise TypeError(
            f"text-to-video takes a prompt string, a PIL image or a dict with 'prompt' / 'image', got {type(inputs).__name__}"
        )

    def _forward(self, model_inputs: dict, **call_kwargs) -> dict:
        out = self.video_pipeline(
            prompt=model_inputs["prompt"], image=model_inputs["image"], output_type="pt", return_dict=True, **call_kwargs
        )
        return {
            "frames": out.frames[0],  # [T, 3, H, W] in [0, 1]
            "keyframes": out.keyframes[0],  # [num_clips, 3, h, w]
            "keyframe_token_ids": out.keyframe_token_ids[0],
            "motion_token_ids": out.motion_token_ids[0],
        }

    def postprocess(self, model_outputs: dict, output_path: str | None = None, fps: float = 6, output_type: str = "np"):
        frames, keyframes = model_outputs["frames"].float(), model_outputs["keyframes"].float()
        result = {
            "frames": _convert(frames, output_type),
            "keyframes": _convert(keyframes, output_type),
            "keyframe_token_ids": list(model_outputs["keyframe_token_ids"]),
            "motion_token_ids": model_outputs["motion_token_ids"],
        }
        if output_path is not None:
            result["video_path"] = VIDEO_SUFFIXES[Path(output_path).suffix.lower()](frames, output_path, fps=fps)
        return result

    def save_pretrained(self, save_directory, **kwargs):
        """Save the whole `VideoLavitPipeline` folder (never `custom_pipelines`: the task comes from the package).
        Reload with `pipeline("text-to-video", model=d, model_kwargs={"subfolder": "language_model"})`."""
        self.video_pipeline.save_pretrained(save_directory, **kwargs)


def _convert(frames: torch.Tensor, output_type: str):
    """`[N, 3, H, W]` in [0, 1] -> that tensor, `np.ndarray [N, H, W, 3]` or a list of PIL images."""
    if output_type == "pt":
        return frames
    array = frames.permute(0, 2, 3, 1).numpy()
    if output_type == "np":
        return array
    return [PIL.Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)) for a in array]


__all__ = ["VideoLavitGenerationModelLoader", "VideoLavitTextToVideoPipeline"]
