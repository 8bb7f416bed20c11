"""Combined processor of Video-LaVIT: text with ``<image>`` / ``<video>`` placeholders + images + videos.

Text is tokenised as the original understanding code does: the prompt is split on the placeholders, every chunk is
tokenised on its own (so each chunk gets the tokenizer's leading-space handling), only the first chunk keeps its BOS,
and each placeholder becomes one negative id (``-200`` image, ``-201`` video). The model replaces a placeholder by
the visual embeddings (a dynamic number of keyframe tokens, plus 135 motion tokens per video clip), which the
processor cannot know in advance, so no expansion happens here.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import make_flat_list_of_images
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from .chat_template import ANSWER_STOP_STRING, VIDEO_LAVIT_CHAT_TEMPLATE
from .image_processing_video_lavit import VideoLavitImageProcessor
from .video_processing_video_lavit import VideoLavitVideoProcessor


class VideoLavitProcessorKwargs(ProcessingKwargs, total=False):
    """Keyword arguments of :meth:`VideoLavitProcessor.__call__` (routed per modality like any HF processor)."""


# text kwargs the processor implements itself; any other text kwarg with a non-default value is rejected
_SUPPORTED_TEXT_KWARGS = {
    "add_special_tokens",
    "padding",
    "padding_side",
    "max_length",
    "pad_to_multiple_of",
    "return_attention_mask",
    "return_tensors",
    "truncation",
    "verbose",
}
_MODALITY_KWARGS = ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs", "common_kwargs")


class VideoLavitProcessor(ProcessorMixin):
    r"""Builds the inputs of :class:`VideoLavitForConditionalGeneration` from text, images and videos.

    Args:
        image_processor (`VideoLavitImageProcessor`, *optional*): images -> ``pixel_values [N, 3, 224, 224]``;
            a default one is created when omitted.
        video_processor (`VideoLavitVideoProcessor`, *optional*): videos -> keyframes, motion vectors and clip
            counts; a default one is created when omitted.
        tokenizer (`PreTrainedTokenizerBase`): the Llama tokenizer (text ids ``0 .. len(tokenizer) - 1``).
        chat_template (`str`, *optional*): defaults to the original "v1" understanding conversation
            (:data:`~video_lavit.processing.chat_template.VIDEO_LAVIT_CHAT_TEMPLATE`).
        image_token / video_token (`str`): the placeholder strings in the text (``"<image>"``, ``"<video>"``).
        image_placeholder_id / video_placeholder_id (`int`): the negative ids the placeholders become (``-200``,
            ``-201``, as in the original and in ``VideoLavitConfig``).
        padding_side (`str`): default padding side of batches, ``"left"`` (what generation needs).

    Outputs of ``__call__`` (a ``BatchFeature``):
        - ``input_ids`` ``[batch, seq]`` with the placeholder ids, padded with the pad id;
        - ``attention_mask`` ``[batch, seq]`` (1 on tokens and placeholders, 0 on padding);
        - ``pixel_values`` ``[N_rows, 3, 224, 224]`` (only with images or videos): every image and every keyframe
          in the order of their placeholders, batch row by row, left to right; an image placeholder consumes one
          row, a video placeholder ``clips_per_video[v]`` rows;
        - ``motion_vectors`` ``[N_clips_total, 2, 24, 20, 36]`` and ``clips_per_video`` ``[N_videos]`` (only with
          videos), in video-placeholder order.
    """

    valid_processor_kwargs = VideoLavitProcessorKwargs

    def __init__(
        self,
        image_processor=None,
        video_processor=None,
        tokenizer=None,
        chat_template=None,
        image_token: str = "<image>",
        video_token: str = "<video>",
        image_placeholder_id: int = -200,
        video_placeholder_id: int = -201,
        padding_side: str = "left",
    ):
        if tokenizer is None:
            raise ValueError(
                "VideoLavitProcessor needs a tokenizer (the Llama tokenizer of the checkpoint; "
                "video_lavit.processing.tokenizer_utils.build_tiny_llama_tokenizer() builds a small one)"
            )
        for name, token in (("image_token", image_token), ("video_token", video_token)):
            if not isinstance(token, str) or not token:
                raise ValueError(f"{name} must be a non-empty string, got {token!r}")
        if image_token == video_token or image_token in video_token or video_token in image_token:
            raise ValueError(f"image_token {image_token!r} and video_token {video_token!r} must not contain each other")
        for name, value in (("image_placeholder_id", image_placeholder_id), ("video_placeholder_id", video_placeholder_id)):
            if not isinstance(value, int) or isinstance(value, bool) or value >= 0:
                raise ValueError(f"{name} must be a negative int (it must never be a vocabulary id), got {value!r}")
        if image_placeholder_id == video_placeholder_id:
            raise ValueError(f"image and video placeholder ids must differ, both are {image_placeholder_id}")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")

        self.image_token = image_token
        self.video_token = video_token
        self.image_placeholder_id = image_placeholder_id
        self.video_placeholder_id = video_placeholder_id
        # names used by generic transformers code
        self.image_token_id = image_placeholder_id
        self.video_token_id = video_placeholder_id
        self.padding_side = padding_side
        self.text_kwargs = {"padding": True, "padding_side": padding_side, "add_special_tokens": True}
        self._placeholder_pattern = re.compile(f"({re.escape(image_token)}|{re.escape(video_token)})")

        if image_processor is None:
            image_processor = VideoLavitImageProcessor()
        if video_processor is None:
            video_processor = VideoLavitVideoProcessor()
        if chat_template is None:
            chat_template = VIDEO_LAVIT_CHAT_TEMPLATE
        super().__init__(image_processor, video_processor, tokenizer, chat_template=chat_template)

    # ------------------------------------------------------------------ torchvision-free construction and loading

    def check_argument_for_proper_class(self, argument_name, argument):
        # the stock check looks the video processor base class up in a mapping that is a dummy without torchvision
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(
                    f"video_processor must be a VideoProcessorMixin (e.g. VideoLavitVideoProcessor), "
                    f"got {type(argument).__name__}"
                )
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # AutoVideoProcessor is unusable without torchvision, so the sub-processors are loaded by class; the
        # tokenizer keeps trust_remote_code (it may have to read a remote-code config.json)
        tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs)
        kwargs.pop("trust_remote_code", None)
        image_processor = VideoLavitImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
        video_processor = VideoLavitVideoProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
        return [image_processor, video_processor, tokenizer]

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "motion_vectors", "clips_per_video"]

    @property
    def text_vocab_size(self) -> int:
        """Number of text ids (``len(tokenizer)``); larger ids are visual/motion ids of the LLM vocabulary."""
        return len(self.tokenizer)

    # ------------------------------------------------------------------ encoding

    def __call__(self, text=None, images=None, videos=None, audio=None, **kwargs) -> BatchFeature:
        r"""Tokenise ``text`` (a string or a list of strings, one per batch row) and process the visual inputs.

        Args:
            text: prompts with one ``<image>`` per image and one ``<video>`` per video.
            images: one image, a list of images, or a list (per row) of lists; PIL, arrays, tensors, paths or URLs.
            videos: one video, a list of videos, or a list (per row) of lists; what ``VideoLavitVideoProcessor``
                accepts (file paths, frame arrays).
            add_special_tokens (`bool`, defaults to `True`): prepend BOS (understanding prompts). ``False`` gives the
                generation-style prompt of the original text-to-video / text-to-image flows (no BOS).
            padding (`bool` or `str`, defaults to `True`): ``True``/``"longest"``, ``"max_length"`` (with
                ``max_length``) or ``False``; ``padding_side`` defaults to the processor's (``"left"``).
            pad_to_multiple_of (`int`, *optional*), return_attention_mask (`bool`, defaults to `True`).
            return_tensors (`"pt"`, `"np"` or `None`): type of ``input_ids``/``attention_mask``; visual outputs are
                always torch tensors.
            images_kwargs / videos_kwargs (`dict`), or flat keyword arguments of the image / video processor.

        Returns:
            `BatchFeature` with ``input_ids``, ``attention_mask`` and, when visual inputs are given,
            ``pixel_values``, ``motion_vectors``, ``clips_per_video`` (see the class docstring).
        """
        if audio is not None:
            raise ValueError("VideoLavitProcessor does not process audio")
        texts = self._normalize_text(text)
        kwargs, video_call_kwargs = self._split_video_call_kwargs(kwargs)
        self._reject_unknown_kwargs(kwargs)
        merged = self._merge_kwargs(VideoLavitProcessorKwargs, tokenizer_init_kwargs=None, **kwargs)
        text_kwargs = merged["text_kwargs"]

        flat_images = self._flatten_images(images)
        flat_videos = self._flatten_videos(videos)
        row_placeholders = [self._placeholder_pattern.findall(sample) for sample in texts]
        self._check_counts(row_placeholders, len(flat_images), len(flat_videos))

        data: dict[str, Any] = {}
        image_rows = video_outputs = None
        if flat_images:
            images_kwargs = {k: v for k, v in merged["images_kwargs"].items() if k != "return_tensors"}
            image_rows = self.image_processor(flat_images, return_tensors="pt", **images_kwargs)["pixel_values"]
            if image_rows.shape[0] != len(flat_images):
                raise ValueError(
                    f"the image processor returned {image_rows.shape[0]} rows for {len(flat_images)} images"
                )
        if flat_videos:
            videos_kwargs = {k: v for k, v in merged["videos_kwargs"].items() if k != "return_tensors"}
            videos_kwargs.update(video_call_kwargs)
            video_outputs = self.video_processor(flat_videos, return_tensors="pt", **videos_kwargs)
            self._check_video_outputs(video_outputs, len(flat_videos))
        if image_rows is not None or video_outputs is not None:
            data["pixel_values"] = self._visual_rows_in_placeholder_order(row_placeholders, image_rows, video_outputs)
        if video_outputs is not None:
            data["motion_vectors"] = video_outputs["motion_vectors"]
            data["clips_per_video"] = torch.as_tensor(video_outputs["clips_per_video"], dtype=torch.long)

        add_special_tokens = text_kwargs.get("add_special_tokens", True)
        input_ids = [self._tokenize_with_placeholders(sample, add_special_tokens) for sample in texts]
        data.update(self._pad(input_ids, text_kwargs))
        return BatchFeature(data, tensor_type=None)

    def _normalize_text(self, text) -> list[str]:
        if text is None:
            raise ValueError(
                f"VideoLavitProcessor needs text: a prompt with one {self.image_token} per image and one "
                f"{self.video_token} per video (use processor.image_processor / processor.video_processor alone "
                "for visual inputs only)"
            )
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
        if len(texts) == 0:
            raise ValueError("text is an empty list; give at least one prompt")
        for index, sample in enumerate(texts):
            if not isinstance(sample, str):
                raise TypeError(f"text[{index}] must be a str, got {type(sample).__name__}")
            if sample == "":
                raise ValueError(f"text[{index}] is an empty string")
        return list(texts)

    def _split_video_call_kwargs(self, kwargs: dict) -> tuple[dict, dict]:
        """Separate the named parameters of the video processor's ``preprocess`` (e.g. ``fps=`` for decoded frames,
        ``clip_start=``, ``seed=``), which are not in its ``valid_kwargs`` and would be dropped by the generic kwarg
        routing; they may be given flat or inside ``videos_kwargs``."""
        params = inspect.signature(self.video_processor.preprocess).parameters
        names = {
            name for name, p in params.items()
            if name not in ("self", "videos", "return_tensors") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        kwargs = dict(kwargs)
        call_kwargs = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        if isinstance(kwargs.get("videos_kwargs"), dict):
            videos_kwargs = dict(kwargs["videos_kwargs"])
            for name in list(videos_kwargs):
                if name in names:
                    if name in call_kwargs:
                        raise ValueError(f"{name} was given both flat and in videos_kwargs")
                    call_kwargs[name] = videos_kwargs.pop(name)
            kwargs["videos_kwargs"] = videos_kwargs
        return kwargs, call_kwargs

    def _reject_unknown_kwargs(self, kwargs: dict) -> None:
        known = set(self.valid_processor_kwargs.__annotations__) | set(_MODALITY_KWARGS)
        known |= set(ProcessingKwargs.__annotations__["text_kwargs"].__annotations__)
        for sub in (self.image_processor, self.video_processor):
            known |= set(getattr(getattr(sub, "valid_kwargs", None), "__annotations__", {}))
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"VideoLavitProcessor got unexpected keyword argument(s) {unknown}")
        text_kwargs = dict(kwargs.get("text_kwargs", {}))
        text_kwargs.update({k: v for k, v in kwargs.items() if k in ProcessingKwargs.__annotations__["text_kwargs"].__annotations__})
        for key, value in text_kwargs.items():
            if key == "truncation" and value not in (None, False, "do_not_truncate"):
                raise ValueError(
                    "truncation is not supported: cutting the ids could drop a placeholder; the model truncates the "
                    "spliced embeddings instead"
                )
            if key not in _SUPPORTED_TEXT_KWARGS and value not in (None, False):
                raise ValueError(f"text keyword argument {key}={value!r} is not supported by VideoLavitProcessor")

    def _flatten_images(self, images) -> list:
        if images is None:
            return []
        images = self.image_processor.fetch_images(images)
        if isinstance(images, (list, tuple)) and all(isinstance(x, (list, tuple)) and not x for x in images):
            return []
        try:
            return list(make_flat_list_of_images(images))
        except ValueError as err:
            raise TypeError(
                "images must be an image (PIL, numpy/torch [H, W, C] or [C, H, W], path or URL), a list of images "
                f"or a list of lists of images; got {type(images).__name__}"
            ) from err

    def _flatten_videos(self, videos) -> list:
        if videos is None:
            return []
        flat: list = []

        def visit(item, depth):
            if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(item, "read"):
                flat.append(item)
            elif isinstance(item, (np.ndarray, torch.Tensor)):
                if item.ndim == 4:
                    flat.append(item)
                elif item.ndim == 5:
                    flat.extend(list(item))
                else:
                    raise ValueError(
                        f"a video array must be [T, H, W, C] / [T, C, H, W] (or a batch of them), got {item.ndim} dims"
                    )
            elif isinstance(item, (list, tuple)):
                if item and all(_is_pil_image(f) or getattr(f, "ndim", None) == 3 for f in item):
                    flat.append(item)  # a list of frames is one video
                    return
                if depth >= 2:
                    raise TypeError("videos may be nested at most two levels deep (rows of videos)")
                for sub in item:
                    visit(sub, depth + 1)
            else:
                raise TypeError(
                    "videos must be a path, bytes, a binary file object, a [T, H, W, 3] frame array/tensor, a list of "
                    "frames, or a (per-row) list of those; "
                    f"got {type(item).__name__}"
                )

        visit(videos, 0)
        return flat

    def _check_counts(self, row_placeholders: list[list[str]], num_images: int, num_videos: int) -> None:
        images_per_row = [row.count(self.image_token) for row in row_placeholders]
        videos_per_row = [row.count(self.video_token) for row in row_placeholders]
        if sum(images_per_row) != num_images:
            raise ValueError(
                f"the text has {sum(images_per_row)} {self.image_token} placeholder(s) (per row: {images_per_row}) "
                f"but {num_images} image(s) were given; give exactly one image per placeholder"
            )
        if sum(videos_per_row) != num_videos:
            raise ValueError(
                f"the text has {sum(videos_per_row)} {self.video_token} placeholder(s) (per row: {videos_per_row}) "
                f"but {num_videos} video(s) were given; give exactly one video per placeholder"
            )

    @staticmethod
    def _check_video_outputs(video_outputs, num_videos: int) -> None:
        for key in ("pixel_values", "motion_vectors", "clips_per_video"):
            if key not in video_outputs:
                raise ValueError(f"the video processor output lacks {key!r} (got {sorted(video_outputs.keys())})")
        clips = torch.as_tensor(video_outputs["clips_per_video"])
        if clips.numel() != num_videos:
            raise ValueError(f"the video processor returned clips_per_video for {clips.numel()} videos, expected {num_videos}")
        total = int(clips.sum())
        for key in ("pixel_values", "motion_vectors"):
            if video_outputs[key].shape[0] != total:
                raise ValueError(
                    f"the video processor returned {video_outputs[key].shape[0]} {key} rows but clips_per_video sums "
                    f"to {total}"
                )

    def _visual_rows_in_placeholder_order(self, row_placeholders, image_rows, video_outputs) -> torch.Tensor:
        pieces = []
        image_index = video_index = 0
        if video_outputs is not None:
            clips = [int(c) for c in torch.as_tensor(video_outputs["clips_per_video"]).tolist()]
            clip_starts = np.cumsum([0] + clips).tolist()
        for row in row_placeholders:
            for placeholder in row:
                if placeholder == self.image_token:
                    pieces.append(image_rows[image_index : image_index + 1])
                    image_index += 1
                else:
                    start, end = clip_starts[video_index], clip_starts[video_index + 1]
                    pieces.append(video_outputs["pixel_values"][start:end])
                    video_index += 1
        return torch.cat(pieces, dim=0)

    def _tokenize_with_placeholders(self, sample: str, add_special_tokens: bool) -> list[int]:
        # Tokenising chunk by chunk (not the joined text) is what the original does; it decides how the text next to
        # a placeholder is split, so it must be kept for the released model to see the ids it was trained on.
        parts = self._placeholder_pattern.split(sample)
        ids: list[int] = []
        bos = self.tokenizer.bos_token_id
        for index, part in enumerate(parts):
            if index % 2 == 1:
                ids.append(self.image_placeholder_id if part == self.image_token else self.video_placeholder_id)
                continue
            chunk_ids = list(self.tokenizer(part, add_special_tokens=add_special_tokens)["input_ids"])
            if index > 0 and add_special_tokens and chunk_ids and chunk_ids[0] == bos:
                chunk_ids = chunk_ids[1:]
            ids.extend(chunk_ids)
        return ids

    def _pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.unk_token_id  # the original understanding runner pads with <unk>
        if pad is None:
            raise ValueError("the tokenizer has neither a pad token nor an unk token to pad batches with")
        return pad

    def _pad(self, input_ids: list[list[int]], text_kwargs: dict) -> dict:
        padding = text_kwargs.get("padding", True)
        padding_side = text_kwargs.get("padding_side") or self.padding_side
        max_length = text_kwargs.get("max_length")
        multiple = text_kwargs.get("pad_to_multiple_of")
        return_tensors = text_kwargs.get("return_tensors")
        return_attention_mask = text_kwargs.get("return_attention_mask")
        return_attention_mask = True if return_attention_mask is None else return_attention_mask
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        padding = str(getattr(padding, "value", padding))
        lengths = [len(ids) for ids in input_ids]

        if padding in ("True", "longest"):
            target = max(lengths)
        elif padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length")
            if max(lengths) > max_length:
                raise ValueError(
                    f"a prompt has {max(lengths)} ids, more than max_length={max_length}; truncation is not supported"
                )
            target = max_length
        elif padding in ("False", "do_not_pad"):
            target = None
        else:
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        if target is not None and multiple:
            target = -(-target // multiple) * multiple

        masks = [[1] * length for length in lengths]
        if target is not None:
            pad_id = self._pad_token_id()
            for row, length in enumerate(lengths):
                fill = target - length
                if padding_side == "left":
                    input_ids[row] = [pad_id] * fill + input_ids[row]
                    masks[row] = [0] * fill + masks[row]
                else:
                    input_ids[row] = input_ids[row] + [pad_id] * fill
                    masks[row] = masks[row] + [0] * fill
        elif return_tensors is not None and len(set(lengths)) > 1:
            raise ValueError(
                f"prompts have different lengths {lengths}; use padding=True to return them as tensors"
            )

        out = {"input_ids": input_ids}
        if return_attention_mask:
            out["attention_mask"] = masks
        tensor_type = None if return_tensors is None else str(getattr(return_tensors, "value", return_tensors))
        if tensor_type == "pt":
            out = {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
        elif tensor_type == "np":
            out = {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        elif tensor_type is not None:
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return out

    # ------------------------------------------------------------------ decoding

    def _text_ids(self, token_ids, skip_special_tokens: bool) -> list[int]:
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.tolist()
        elif isinstance(token_ids, np.ndarray):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        vocab = self.text_vocab_size
        bad = [i for i in token_ids if not 0 <= int(i) < vocab]
        if bad and not skip_special_tokens:
            raise ValueError(
                f"ids {sorted(set(int(i) for i in bad))[:10]} are not text tokens (text ids are 0..{vocab - 1}; "
                f"{self.image_placeholder_id}/{self.video_placeholder_id} are placeholders, larger ids are visual or "
                "motion tokens); pass skip_special_tokens=True to leave them out of the text"
            )
        return [int(i) for i in token_ids if 0 <= int(i) < vocab]

    def decode(self, token_ids, skip_special_tokens: bool = False, **kwargs) -> str:
        """Decode one sequence of ids to text.

        Ids outside the text vocabulary (placeholders ``< 0``, visual/motion ids ``>= len(tokenizer)``) are treated
        like special tokens: left out with ``skip_special_tokens=True``, a ``ValueError`` otherwise.
        """
        if isinstance(token_ids, (torch.Tensor, np.ndarray)) and token_ids.ndim != 1:
            raise ValueError(f"decode takes one sequence (1-D), got shape {tuple(token_ids.shape)}; use batch_decode")
        ids = self._text_ids(token_ids, skip_special_tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens, **kwargs)

    def batch_decode(self, sequences, skip_special_tokens: bool = False, **kwargs) -> list[str]:
        """Decode a batch (``[batch, seq]`` tensor/array or list of id lists); see :meth:`decode`."""
        if isinstance(sequences, (torch.Tensor, np.ndarray)) and sequences.ndim != 2:
            raise ValueError(f"batch_decode takes [batch, seq] ids, got shape {tuple(sequences.shape)}")
        return [self.decode(seq, skip_special_tokens=skip_special_tokens, **kwargs) for seq in sequences]

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens=True, **kwargs):
        """Decode ``generate`` outputs for ``pipeline("image-text-to-text")``: a list of strings for ``[batch, seq]``
        ids, a string for one sequence."""
        if isinstance(generated_outputs, (torch.Tensor, np.ndarray)) and generated_outputs.ndim == 1:
            return self.decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)
        return self.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode_answers(
        self, generated_ids, prompt_length: int = 0, stop_string: str | None = ANSWER_STOP_STRING
    ) -> list[str]:
        r"""The original understanding post-processing: decode the ids after ``prompt_length`` (without special
        tokens), cut at the first ``stop_string`` (the literal two characters ``\n`` the SFT model ends answers
        with; ``None`` keeps everything) and strip surrounding whitespace.

        Args:
            generated_ids: ``[batch, seq]`` output of ``generate``.
            prompt_length: number of leading prompt positions to skip (0 when ``generate`` returns only new ids).
        """
        if isinstance(generated_ids, (torch.Tensor, np.ndarray)):
            if generated_ids.ndim != 2:
                raise ValueError(f"generated_ids must be [batch, seq], got shape {tuple(generated_ids.shape)}")
            rows = generated_ids[:, prompt_length:]
        else:
            rows = [list(row)[prompt_length:] for row in generated_ids]
        texts = self.batch_decode(rows, skip_special_tokens=True)
        if stop_string:
            texts = [text.split(stop_string)[0] for text in texts]
        return [text.strip() for text in texts]


def _is_pil_image(obj) -> bool:
    return isinstance(obj, Image.Image)


__all__ = ["VideoLavitProcessor", "VideoLavitProcessorKwargs"]
