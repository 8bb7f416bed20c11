"""Batches for finetuning the Video-LaVIT language model in both directions.

* **generation** (caption -> video / image): a feature with ``text_ids``, ``keyframe_codes`` (one 1-D code tensor
  per clip or image) and optionally ``motion_codes`` (``[num_clips, num_motion_tokens]``) becomes
  ``text ‖ [IMG] v.. [/IMG] [MOV] m.. [/MOV] ‖ …`` (the pre-training layout); labels are the keyframe/motion ids
  (specials included) and ``-100`` on the caption unless ``train_on_text``.
* **understanding** (video / image + question -> answer): a feature with ``prompt_ids`` (holding the image/video
  placeholders, e.g. the processor's output for the conversation template), ``answer_ids`` and the visual inputs
  (``pixel_values`` / ``motion_vectors`` / ``clips_per_video``, or pre-computed ``visual_features`` /
  ``motion_token_ids``). Labels are ``-100`` on the prompt and on every placeholder (the model also gives the
  expanded visual positions ``-100``); the answer ids are the targets.

Both kinds may share a batch. Sequences are padded (never truncated: a too long one raises ``ValueError``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..modeling.generation_video_lavit import VideoLavitTokenLayout


def _ids(value, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got {tensor.dtype}")
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}")
    return tensor.long()


@dataclass
class VideoLavitDataCollator:
    """Collate generation- and understanding-direction features for ``VideoLavitForConditionalGeneration``.

    Args:
        config: the model's ``VideoLavitConfig`` (token layout, placeholders, ``ignore_index``, context length).
        pad_token_id: id written on padding (masked out; defaults to the text config's pad id, else 0).
        padding_side: ``"right"`` (training) or ``"left"``.
        max_length: longest allowed id sequence (defaults to ``max_position_embeddings``); longer ones raise.
        train_on_text: also predict the caption in generation-direction samples.
        append_eos_to_answer: add the text config's eos id after each understanding answer.

    Returns (from ``__call__``) a dict with ``input_ids``, ``attention_mask``, ``labels`` (``[B, L]``) and, when
    present, ``pixel_values``, ``motion_vectors``, ``clips_per_video``, ``visual_features`` (list) and
    ``motion_token_ids``, each concatenated over the batch in row order.
    """

    config: object
    pad_token_id: int | None = None
    padding_side: str = "right"
    max_length: int | None = None
    train_on_text: bool = False
    append_eos_to_answer: bool = False

    def __post_init__(self):
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        self.layout = VideoLavitTokenLayout.from_config(self.config)
        text_config = self.config.get_text_config()
        if self.pad_token_id is None:
            self.pad_token_id = getattr(text_config, "pad_token_id", None) or 0
        if self.max_length is None:
            self.max_length = text_config.max_position_embeddings
        self.eos_token_id = text_config.eos_token_id
        self.ignore_index = getattr(self.config, "ignore_index", -100)
        self.placeholders = (self.config.image_placeholder_id, self.config.video_placeholder_id)
        self.text_vocab_size = self.config.text_vocab_size

    # ------------------------------------------------------------------------------------------ one sample
    def _generation_sample(self, feature: dict, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        layout = self.layout
        text = _ids(feature["text_ids"], f"sample {index}: text_ids")
        if text.numel() and (text.min() < 0 or text.max() >= self.text_vocab_size):
            raise ValueError(
                f"sample {index}: text_ids must lie in [0, {self.text_vocab_size}), got "
                f"[{int(text.min())}, {int(text.max())}]"
            )
        keyframes = feature["keyframe_codes"]
        if isinstance(keyframes, torch.Tensor) and keyframes.dim() == 1:
            keyframes = [keyframes]
        if len(keyframes) == 0:
            raise ValueError(f"sample {index}: keyframe_codes is empty")
        motion = feature.get("motion_codes")
        if motion is not None:
            motion = torch.as_tensor(motion)
            if motion.dim() != 2 or motion.shape[0] != len(keyframes):
                raise ValueError(
                    f"sample {index}: motion_codes must have shape [{len(keyframes)} clips, "
                    f"{layout.motion_tokens_per_clip}], got {tuple(motion.shape)}"
                )
        pieces = [text]
        for clip, codes in enumerate(keyframes):
            try:
                pieces.append(layout.wrap_image_codes(_ids(codes, f"sample {index}: keyframe_codes[{clip}]")))
                if motion is not None:
                    pieces.append(layout.motion_codes_to_ids(motion[clip]))
            except ValueError as error:
                raise ValueError(f"sample {index}, clip {clip}: {error}") from None
        input_ids = torch.cat(pieces)
        labels = input_ids.clone()
        if not self.train_on_text:
            labels[: text.numel()] = self.ignore_index
        return input_ids, labels

    def _understanding_sample(self, feature: dict, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        prompt = _ids(feature["prompt_ids"], f"sample {index}: prompt_ids")
        answer = _ids(feature["answer_ids"], f"sample {index}: answer_ids")
        if self.append_eos_to_answer:
            answer = torch.cat([answer, answer.new_tensor([self.eos_token_id])])
        vocab = self.layout.vocab_size
        is_placeholder = (prompt == self.placeholders[0]) | (prompt == self.placeholders[1])
        bad = ((prompt < 0) & ~is_placeholder) | (prompt >= vocab)
        if bad.any():
            raise ValueError(
                f"sample {index}: prompt_ids must lie in [0, {vocab}) or be a placeholder {self.placeholders}, got "
                f"{sorted(set(prompt[bad].tolist()))[:10]}"
            )
        if answer.numel() == 0:
            raise ValueError(f"sample {index}: answer_ids is empty, nothing to learn from")
        if answer.min() < 0 or answer.max() >= self.text_vocab_size:
            raise ValueError(
                f"sample {index}: answer_ids must be text ids in [0, {self.text_vocab_size}), got "
                f"[{int(answer.min())}, {int(answer.max())}]"
            )
        n_videos = int((prompt == self.placeholders[1]).sum())
        clips = feature.get("clips_per_video")
        if n_videos and clips is not None and torch.as_tensor(clips).numel() != n_videos:
            raise ValueError(
                f"sample {index}: {n_videos} video placeholder(s) but clips_per_video has "
                f"{torch.as_tensor(clips).numel()} entries"
            )
        motion = feature.get("motion_token_ids")
        if motion is not None and torch.as_tensor(motion).shape[-1] != self.layout.motion_tokens_per_clip:
            raise ValueError(
                f"sample {index}: motion_token_ids must have {self.layout.motion_tokens_per_clip} tokens per clip, "
                f"got shape {tuple(torch.as_tensor(motion).shape)}"
            )
        input_ids = torch.cat([prompt, answer])
        labels = torch.cat([torch.full_like(prompt, self.ignore_index), answer])
        return input_ids, labels

    # ------------------------------------------------------------------------------------------ batch
    def __call__(self, features: list[dict]) -> dict:
        if not features:
            raise ValueError("cannot collate an empty list of features")
        rows, row_labels = [], []
        for i, feature in enumerate(features):
            if "text_ids" in feature and "keyframe_codes" in feature:
                ids, labels = self._generation_sample(feature, i)
            elif "prompt_ids" in feature and "answer_ids" in feature:
                ids, labels = self._understanding_sample(feature, i)
            else:
                raise ValueError(
                    f"sample {i} has keys {sorted(feature)}; expected text_ids + keyframe_codes (generation) or "
                    "prompt_ids + answer_ids (understanding)"
                )
            if ids.numel() > self.max_length:
                raise ValueError(f"sample {i} has {ids.numel()} ids, more than max_length={self.max_length}")
            rows.append(ids)
            row_labels.append(labels)

        length = max(r.numel() for r in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), self.ignore_index, dtype=torch.long)
        for b, (ids, lab) in enumerate(zip(rows, row_labels)):
            span = slice(0, ids.numel()) if self.padding_side == "right" else slice(length - ids.numel(), length)
            input_ids[b, span] = ids
            attention_mask[b, span] = 1
            labels[b, span] = lab
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

        for key in ("pixel_values", "motion_vectors", "clips_per_video", "motion_token_ids"):
            values = [torch.as_tensor(f[key]) for f in features if f.get(key) is not None]
            if key == "clips_per_video":
                values = [v.reshape(-1).long() for v in values]
            if values:
                batch[key] = torch.cat(values, dim=0)
        features_lists = [f["visual_features"] for f in features if f.get("visual_features") is not None]
        if features_lists:
            batch["visual_features"] = [torch.as_tensor(v) for group in features_lists for v in group]
        return batch


__all__ = ["VideoLavitDataCollator"]
