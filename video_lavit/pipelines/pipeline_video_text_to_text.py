# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""`transformers.pipeline("video-text-to-text")`: answer a question about a video (or an image) with Video-LaVIT.

The prompt is the processor's chat template (the original "v1" understanding conversation), the answer comes from
`VideoLavitForConditionalGeneration.generate` (greedy, stop on EOS or the literal `\\n` separator) and is cut like the
original runner does (`VideoLavitProcessor.decode_answers`).
"""

from __future__ import annotations

from pathlib import Path

import PIL.Image
from transformers import Pipeline

from .checkpoint_layout import model_loading_kwargs, processor_location, understanding_model_location

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# arguments of the video processor a caller may set per call
VIDEO_OPTIONS = ("max_clips", "fps", "clip_start")


class VideoLavitUnderstandingModelLoader:
    """The `pt_model` of `video-text-to-text`: the root model of a converted folder, else the `language_model/` of a
    `VideoLavitPipeline` folder."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, **kwargs):
        from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

        folder, found = understanding_model_location(pretrained_model_name_or_path)
        subfolder = subfolder or found
        loading = model_loading_kwargs(kwargs)
        model = VideoLavitForConditionalGeneration.from_pretrained(folder, subfolder=subfolder or "", **loading)
        return model.eval()


def is_image_path(path) -> bool:
    return isinstance(path, (str, Path)) and Path(path).suffix.lower() in IMAGE_SUFFIXES


class VideoLavitVideoTextToTextPipeline(Pipeline):
    r"""
    Video (or image) question answering with Video-LaVIT, as a `transformers` pipeline.

    ```python
    import video_lavit
    from transformers import pipeline

    qa = pipeline("video-text-to-text", model="video-lavit-hf")
    qa("clip.mp4", question="What is happening in this video?")       # {"generated_text": "..."}
    qa({"image": "dog.jpg", "question": "What animal is this?"}, max_new_tokens=64)
    ```

    Inputs: a video (path, bytes or decoded frames, anything `VideoLavitVideoProcessor` reads) or an image (PIL image,
    or a path ending in an image suffix), with `question=`; or a dict with `"video"` or `"image"` and `"question"`
    (`"text"` is accepted as its alias). Call arguments: `question`, `system_prompt` (replaces the default system
    message), `max_clips` / `fps` / `clip_start` (video processor), `max_new_tokens`, `generate_kwargs` (any other
    `generate` argument) and `return_full_text` (also return the whole decoded prompt + answer).

    Returns `{"generated_text": answer}` (plus `"full_text"` with `return_full_text=True`).
    """

    _load_processor = None
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, model, processor=None, **kwargs):
        if processor is None:
            from ..processing.processing_video_lavit import VideoLavitProcessor

            folder = getattr(model, "name_or_path", None)
            if not folder:
                raise ValueError("pass `processor=` (a VideoLavitProcessor) with a model object that has no folder")
            processor = VideoLavitProcessor.from_pretrained(processor_location(folder))
        super().__init__(model=model, processor=processor, **kwargs)

    def __call__(self, inputs, question: str | None = None, **kwargs):
        if question is not None:
            kwargs["question"] = question
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self, question=None, system_prompt=None, max_new_tokens=None, generate_kwargs=None, return_full_text=None,
        **video_options,
    ):
        unknown = sorted(set(video_options) - set(VIDEO_OPTIONS))
        if unknown:
            raise TypeError(
                f"video-text-to-text got unexpected arguments {unknown}; accepted: question, system_prompt, "
                f"max_new_tokens, generate_kwargs, return_full_text, {', '.join(VIDEO_OPTIONS)}"
            )
        preprocess = {k: v for k, v in video_options.items() if v is not None}
        if question is not None:
            preprocess["question"] = question
        if system_prompt is not None:
            preprocess["system_prompt"] = system_prompt
        forward = dict(generate_kwargs or {})
        if max_new_tokens is not None:
            if "max_new_tokens" in forward:
                raise ValueError("max_new_tokens given twice: as an argument and in generate_kwargs")
            forward["max_new_tokens"] = max_new_tokens
        postprocess = {} if return_full_text is None else {"return_full_text": bool(return_full_text)}
        return preprocess, forward, postprocess

    def preprocess(self, inputs, question: str | None = None, system_prompt: str | None = None, **video_options):
        media_kind, media = self._media(inputs)
        if isinstance(inputs, dict):
            asked = inputs.get("question", inputs.get("text"))
            if asked is not None and question is not None and asked != question:
                raise ValueError("the question is given twice (in the input dict and as `question=`) with different text")
            question = asked if asked is not None else question
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"video-text-to-text needs a non-empty `question` string, got {question!r}")
        for token in (self.processor.image_token, self.processor.video_token):
            if token in question:
                raise ValueError(f"the question must not contain {token!r}; the pipeline places the {media_kind} itself")
        messages = [{"role": "user", "content": [{"type": media_kind}, {"type": "text", "text": question}]}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": system_prompt})
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        if media_kind == "image":
            if video_options:
                raise ValueError(f"{sorted(video_options)} apply to videos, but the input is an image")
            return self.processor(text=prompt, images=[media], return_tensors="pt")
        return self.processor(text=prompt, videos=[media], return_tensors="pt", **video_options)

    @staticmethod
    def _media(inputs):
        """-> ("image" | "video", media) from any accepted input form."""
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - {"video", "image", "question", "text"})
            kinds = [k for k in ("video", "image") if inputs.get(k) is not None]
            if unknown or len(kinds) != 1:
                raise ValueError(
                    "video-text-to-text input dicts hold exactly one of 'video' / 'image' plus 'question' (or 'text'), "
                    f"got keys {sorted(inputs)}"
                )
            kind, media = kinds[0], inputs[kinds[0]]
        elif isinstance(inputs, PIL.Image.Image) or is_image_path(inputs):
            kind, media = "image", inputs
        else:
            kind, media = "video", inputs
        if kind == "image" and isinstance(media, (str, Path)):
            media = PIL.Image.open(media)
        if kind == "image" and isinstance(media, PIL.Image.Image):
            media = media.convert("RGB")
        if kind == "video" and isinstance(media, Path):
            media = str(media)
        return kind, media

    def _forward(self, model_inputs, **generate_kwargs):
        prompt_length = model_inputs["input_ids"].shape[1]
        sequences = self.model.generate(**model_inputs, tokenizer=self.processor.tokenizer, **generate_kwargs)
        return {"sequences": sequences, "prompt_length": prompt_length}

    def postprocess(self, model_outputs, return_full_text: bool = False):
        sequences = model_outputs["sequences"]
        result = {"generated_text": self.processor.decode_answers(sequences, prompt_length=model_outputs["prompt_length"])[0]}
        if return_full_text:
            result["full_text"] = self.processor.decode(sequences[0], skip_special_tokens=True)
        return result

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model and its processor (never `custom_pipelines`: the task comes from the package)."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)


__all__ = ["VideoLavitUnderstandingModelLoader", "VideoLavitVideoTextToTextPipeline", "is_image_path"]
