# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Keyframe- and motion-token generation for Video-LaVIT (text-to-video, image-to-video, text-to-image).

Everything runs through transformers' ``generate`` with ``LogitsProcessor``s:

* :class:`TokenRangeLogitsProcessor` keeps only the ids a stage may emit (as the original's
  ``suppress_tokens``: ids 0/1/2 are never blocked, keyframe stage = ``[IMG]..visual codes``, motion stage =
  ``[MOV]..motion codes``).
* Classifier-free guidance uses transformers' *unbatched* semantics: log-softmax mix
  ``g * (cond - uncond) + uncond`` where the unconditional context is only the stage's start token plus the
  generated tokens. :class:`BatchedClassifierFreeGuidanceLogitsProcessor` computes the same thing with the
  unconditional rows appended to the batch (one forward per step instead of two);
  ``batched_cfg=False`` falls back to transformers' ``UnbatchedClassifierFreeGuidanceLogitsProcessor``.
* :class:`GeneratorSamplingLogitsProcessor` draws the next token with ``torch.multinomial(..., generator=)``
  and leaves only that id finite, so ``generate`` runs in greedy mode and its argmax picks the draw. This is
  how ``generator=`` makes sampling reproducible (transformers' own sampling uses the global RNG). With the
  same seed it consumes random numbers exactly as transformers' sampling does after ``torch.manual_seed``.

Only torch/transformers are imported so the file can ship as Hugging Face remote code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig
from transformers.generation import (
    LogitsProcessor,
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.utils import ModelOutput, logging


logger = logging.get_logger(__name__)


# --------------------------------------------------------------------------------------------------------------
# Token layout
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoLavitTokenLayout:
    """Where the multimodal ids live in the LLM vocabulary (released values in brackets).

    text ``[0, image_start)`` (32000 ids), ``[IMG]`` (32000), ``[/IMG]`` (32001), visual codes at
    ``visual_token_offset`` (32002, ``visual_vocab_size`` = 16384 codes), ``[MOV]`` (48386), ``[/MOV]`` (48387),
    motion codes at ``motion_token_offset`` (48388, ``motion_vocab_size`` = 1024 codes), ``vocab_size`` 49412.
    """

    image_start_token_id: int = 32000
    image_end_token_id: int = 32001
    visual_token_offset: int = 32002
    visual_vocab_size: int = 16384
    motion_start_token_id: int = 48386
    motion_end_token_id: int = 48387
    motion_token_offset: int = 48388
    motion_vocab_size: int = 1024
    motion_tokens_per_clip: int = 135
    vocab_size: int = 49412
    pad_token_id: int = 2
    # unk/bos/eos: the original never suppresses them and deletes generated pads (= eos) afterwards
    num_always_allowed: int = 3

    def __post_init__(self):
        order = [
            ("image_start_token_id", self.image_start_token_id),
            ("image_end_token_id", self.image_end_token_id),
            ("visual_token_offset", self.visual_token_offset),
            ("motion_start_token_id", self.motion_start_token_id),
            ("motion_end_token_id", self.motion_end_token_id),
            ("motion_token_offset", self.motion_token_offset),
        ]
        for (name_a, a), (name_b, b) in zip(order, order[1:]):
            if not a < b:
                raise ValueError(f"token layout: expected {name_a} ({a}) < {name_b} ({b})")
        if self.visual_token_offset + self.visual_vocab_size > self.motion_start_token_id:
            raise ValueError(
                f"token layout: visual codes [{self.visual_token_offset}, "
                f"{self.visual_token_offset + self.visual_vocab_size}) overlap [MOV] = {self.motion_start_token_id}"
            )
        if self.motion_token_offset + self.motion_vocab_size > self.vocab_size:
            raise ValueError(
                f"token layout: motion codes end at {self.motion_token_offset + self.motion_vocab_size} "
                f"but vocab_size is {self.vocab_size}"
            )
        if self.motion_tokens_per_clip <= 0:
            raise ValueError(f"motion_tokens_per_clip must be positive, got {self.motion_tokens_per_clip}")

    @classmethod
    def from_config(cls, config) -> "VideoLavitTokenLayout":
        """Read the layout from a ``VideoLavitConfig`` (or any config carrying the same attribute names:
        ``image_start_token_id``, ``image_end_token_id``, ``visual_token_offset``, ``visual_vocab_size``,
        ``motion_start_token_id``, ``motion_end_token_id``, ``motion_token_offset``, ``motion_vocab_size``,
        ``num_motion_tokens``). The pad id is the text config's eos id, as the original sets pad = eos."""
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        fields = {}
        for name, field in (
            ("image_start_token_id", "image_start_token_id"),
            ("image_end_token_id", "image_end_token_id"),
            ("visual_token_offset", "visual_token_offset"),
            ("visual_vocab_size", "visual_vocab_size"),
            ("motion_start_token_id", "motion_start_token_id"),
            ("motion_end_token_id", "motion_end_token_id"),
            ("motion_token_offset", "motion_token_offset"),
            ("motion_vocab_size", "motion_vocab_size"),
            ("num_motion_tokens", "motion_tokens_per_clip"),
        ):
            value = getattr(config, name, None)
            if value is None:
                raise ValueError(f"{type(config).__name__} has no `{name}`; it is needed for video-token generation")
            fields[field] = int(value)
        eos = getattr(text_config, "eos_token_id", None)
        if isinstance(eos, (list, tuple)):
            eos = eos[0]
        if eos is None:
            raise ValueError(f"{type(text_config).__name__} has no eos_token_id (the generation pad id)")
        return cls(vocab_size=int(text_config.vocab_size), pad_token_id=int(eos), **fields)

    @property
    def keyframe_allowed_ranges(self) -> list[tuple[int, int]]:
        """Half-open id ranges the keyframe stage may emit: unk/bos/eos, [IMG], [/IMG], visual codes."""
        return [(0, self.num_always_allowed), (self.image_start_token_id, self.motion_start_token_id)]

    @property
    def motion_allowed_ranges(self) -> list[tuple[int, int]]:
        """Half-open id ranges the motion stage may emit: unk/bos/eos, [MOV], [/MOV], motion codes."""
        return [
            (0, self.num_always_allowed),
            (self.motion_start_token_id, self.motion_token_offset + self.motion_vocab_size),
        ]

    @property
    def keyframe_code_ranges(self) -> list[tuple[int, int]]:
        """The keyframe stage restricted to what it keeps: ``[/IMG]`` and the visual codes."""
        return [
            (self.image_end_token_id, self.image_end_token_id + 1),
            (self.visual_token_offset, self.visual_token_offset + self.visual_vocab_size),
        ]

    @property
    def motion_code_ranges(self) -> list[tuple[int, int]]:
        """The motion stage restricted to what it keeps: ``[/MOV]`` and the motion codes."""
        return [
            (self.motion_end_token_id, self.motion_end_token_id + 1),
            (self.motion_token_offset, self.motion_token_offset + self.motion_vocab_size),
        ]

    def wrap_image_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Visual codes ``[K]`` (0..visual_vocab_size-1) -> LLM ids ``[K + 2]`` = ``[IMG] ids [/IMG]``."""
        codes = torch.as_tensor(codes)
        if codes.dim() != 1:
            raise ValueError(f"image codes must be a 1-D tensor, got shape {tuple(codes.shape)}")
        if codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"image codes must be an integer tensor, got {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.visual_vocab_size):
            raise ValueError(
                f"image codes must lie in [0, {self.visual_vocab_size}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        start = codes.new_tensor([self.image_start_token_id]).long()
        end = codes.new_tensor([self.image_end_token_id]).long()
        return torch.cat([start, codes.long() + self.visual_token_offset, end])

    def motion_codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Motion codes ``[..., motion_tokens_per_clip]`` -> ``[MOV] ids [/MOV]`` LLM ids ``[..., N + 2]``."""
        codes = torch.as_tensor(codes)
        if codes.shape[-1:] != (self.motion_tokens_per_clip,):
            raise ValueError(
                f"expected {self.motion_tokens_per_clip} motion codes per clip, got shape {tuple(codes.shape)}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.motion_vocab_size):
            raise ValueError(
                f"motion codes must lie in [0, {self.motion_vocab_size}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        shape = codes.shape[:-1] + (1,)
        start = torch.full(shape, self.motion_start_token_id, dtype=torch.long, device=codes.device)
        end = torch.full(shape, self.motion_end_token_id, dtype=torch.long, device=codes.device)
        return torch.cat([start, codes.long() + self.motion_token_offset, end], dim=-1)

    def keyframe_codes(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Generated keyframe-stage ids -> visual codes, dropping every id outside the visual-code range."""
        token_ids = torch.as_tensor(token_ids)
        keep = (token_ids >= self.visual_token_offset) & (token_ids < self.visual_token_offset + self.visual_vocab_size)
        return token_ids[keep] - self.visual_token_offset

    def prune_motion_ids(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Generated motion-stage ids -> exactly ``motion_tokens_per_clip`` motion-code ids, as the original.

        Keeps ids above ``[/MOV]``, truncates to the first N or right-pads with the first motion-code id
        (code 0). Returns ``(ids [N], number of motion codes actually generated)``.
        """
        token_ids = torch.as_tensor(token_ids)
        codes = token_ids[token_ids > self.motion_end_token_id]
        count = int(codes.numel())
        n = self.motion_tokens_per_clip
        if count >= n:
            return codes[:n], count
        pad = torch.full((n - count,), self.motion_token_offset, dtype=codes.dtype, device=codes.device)
        return torch.cat([codes, pad]), count


# --------------------------------------------------------------------------------------------------------------
# Logits processors
# --------------------------------------------------------------------------------------------------------------


class TokenRangeLogitsProcessor(LogitsProcessor):
    """Sets every score outside ``allowed_ranges`` (half-open ``(start, end)`` pairs) to ``-inf``.

    Equivalent to the original's ``suppress_tokens`` list (which suppresses the complement, ``-inf`` too).
    """

    def __init__(self, allowed_ranges: list[tuple[int, int]], vocab_size: int):
        allowed = torch.zeros(vocab_size, dtype=torch.bool)
        for start, end in allowed_ranges:
            if not 0 <= start < end <= vocab_size:
                raise ValueError(f"allowed range ({start}, {end}) does not fit a vocabulary of {vocab_size}")
            allowed[start:end] = True
        self.allowed = allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] != self.allowed.numel():
            raise ValueError(f"scores have {scores.shape[-1]} columns, the processor expects {self.allowed.numel()}")
        allowed = self.allowed.to(scores.device)
        return scores.masked_fill(~allowed, -float("inf"))


class BatchedClassifierFreeGuidanceLogitsProcessor(LogitsProcessor):
    """Classifier-free guidance where the unconditional rows ride in the same batch as the conditional ones.

    ``scores`` has ``2 * batch_size`` rows: conditional rows first, then the unconditional rows (whose context is
    only the stage's start token; see :meth:`VideoLavitVideoTokenGenerationMixin`). Both halves get the mixed
    scores ``g * (logsoftmax(cond) - logsoftmax(uncond)) + logsoftmax(uncond)``, so they pick the same token and
    the unconditional context grows by exactly the generated tokens, as in transformers' unbatched CFG.
    """

    def __init__(self, guidance_scale: float, batch_size: int):
        self.guidance_scale = float(guidance_scale)
        self.batch_size = int(batch_size)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != 2 * self.batch_size:
            raise ValueError(f"batched CFG expects {2 * self.batch_size} score rows, got {scores.shape[0]}")
        log_probs = torch.nn.functional.log_softmax(scores, dim=-1)
        cond, uncond = log_probs[: self.batch_size], log_probs[self.batch_size :]
        mixed = self.guidance_scale * (cond - uncond) + uncond
        return torch.cat([mixed, mixed], dim=0)


class GeneratorSamplingLogitsProcessor(LogitsProcessor):
    """Multinomial sampling from ``softmax(scores)`` with an explicit ``torch.Generator``.

    Returns scores where only the drawn id keeps its value (everything else ``-inf``), so greedy decoding in
    ``generate`` selects the draw. Draws are made for the first ``batch_size`` rows only; further rows (the
    unconditional half of batched CFG) copy them. One ``torch.multinomial`` call on ``[batch_size, vocab]`` per
    step: the same random-number consumption as transformers' ``do_sample=True``.
    """

    def __init__(self, generator: torch.Generator | None = None, batch_size: int | None = None):
        self.generator = generator
        self.batch_size = batch_size

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch_size = self.batch_size or scores.shape[0]
        if scores.shape[0] % batch_size:
            raise ValueError(f"{scores.shape[0]} score rows are not a multiple of the batch size {batch_size}")
        probs = torch.nn.functional.softmax(scores[:batch_size], dim=-1)
        drawn = torch.multinomial(probs, num_samples=1, generator=self.generator)
        drawn = drawn.repeat(scores.shape[0] // batch_size, 1)
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, drawn, True)
        return scores.masked_fill(~keep, -float("inf"))


class ScoreRecorder(LogitsProcessor):
    """Keeps a copy of the scores it sees (the first ``batch_size`` rows); a debugging / parity aid."""

    def __init__(self, batch_size: int | None = None):
        self.batch_size = batch_size
        self.scores: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = scores if self.batch_size is None else scores[: self.batch_size]
        self.scores.append(rows.detach().clone())
        return scores


# --------------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ImageTokenGenerationOutput(ModelOutput):
    """Result of :meth:`VideoLavitVideoTokenGenerationMixin.generate_image_tokens`.

    Args:
        image_token_ids (`list[torch.LongTensor]`): per sample, the generated ids ``[T_i]`` with every pad/eos
            id removed (what the original calls ``pure_image_tokens``; may contain ``[/IMG]``, unk or bos).
        image_codes (`list[torch.LongTensor]`): per sample, the visual codes ``[K_i]`` (ids in the visual range
            minus ``visual_token_offset``), the input of the keyframe detokenizer.
        sequences (`list[torch.LongTensor]`): per sample, prompt + ``[IMG]`` + generated ids, pads removed.
    """

    image_token_ids: list | None = None
    image_codes: list | None = None
    sequences: list | None = None


@dataclass
class VideoTokenGenerationOutput(ModelOutput):
    """Result of :meth:`VideoLavitVideoTokenGenerationMixin.generate_video_tokens`.

    Args:
        keyframe_token_ids (`list[list[torch.LongTensor]]`): ``[sample][clip]`` keyframe-stage ids ``[T]``, pads
            removed (for an image-to-video first clip: the given image wrapped as ``[IMG] ids [/IMG]``).
        keyframe_codes (`list[list[torch.LongTensor]]`): ``[sample][clip]`` visual codes ``[K]``.
        motion_token_ids (`torch.LongTensor` of shape `(batch, num_clips, motion_tokens_per_clip)`): motion-code
            ids pruned / padded to exactly ``motion_tokens_per_clip`` (pad = first motion-code id).
        motion_codes (`torch.LongTensor` of the same shape): ``motion_token_ids - motion_token_offset``, the
            input of the motion detokenizer.
        motion_token_counts (`torch.LongTensor` of shape `(batch, num_clips)`): how many motion codes the LLM
            actually produced before the pruning / padding.
        sequences (`list[torch.LongTensor]`): per sample, the whole final context (prompt and every clip's
            ``[IMG]..[/IMG][MOV]..[/MOV]``), pads removed.
    """

    keyframe_token_ids: list | None = None
    keyframe_codes: list | None = None
    motion_token_ids: torch.LongTensor | None = None
    motion_codes: torch.LongTensor | None = None
    motion_token_counts: torch.LongTensor | None = None
    sequences: list | None = None


# --------------------------------------------------------------------------------------------------------------
# The mixin
# --------------------------------------------------------------------------------------------------------------


class VideoLavitVideoTokenGenerationMixin:
    """Adds ``generate_video_tokens`` / ``generate_image_tokens`` to a causal LM with ``GenerationMixin``.

    Works on any model whose ``config`` carries the Video-LaVIT token layout (see
    :meth:`VideoLavitTokenLayout.from_config`) and whose ``forward`` is a causal-LM forward
    (``input_ids, attention_mask, position_ids, past_key_values, use_cache -> logits``).
    """

    @property
    def token_layout(self) -> VideoLavitTokenLayout:
        return VideoLavitTokenLayout.from_config(self.config)

    # ---------------------------------------------------------------------------------------------- inputs

    def _prompts_from_inputs(self, input_ids, attention_mask, layout: VideoLavitTokenLayout) -> list[torch.Tensor]:
        """Padded ``[B, L]`` ids + mask, or a list of 1-D id sequences -> list of unpadded 1-D LongTensors."""
        if input_ids is None:
            return []
        if isinstance(input_ids, (list, tuple)):
            prompts = [torch.as_tensor(p) for p in input_ids]
            for i, p in enumerate(prompts):
                if p.dim() != 1:
                    raise ValueError(f"prompt {i} must be 1-D, got shape {tuple(p.shape)}")
                if p.dtype.is_floating_point or p.dtype == torch.bool:
                    raise TypeError(f"prompt {i} must hold integer ids, got {p.dtype}")
            if attention_mask is not None:
                raise ValueError("attention_mask is only accepted with a padded `input_ids` tensor, not with a list")
        else:
            input_ids = torch.as_tensor(input_ids)
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must have shape [batch, length], got {tuple(input_ids.shape)}")
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            if attention_mask.shape != input_ids.shape:
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
                )
            prompts = [row[mask.bool()] for row, mask in zip(input_ids, attention_mask)]
        if not isinstance(input_ids, (list, tuple)) and (input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool):
            raise TypeError(f"input_ids must hold integer ids, got {input_ids.dtype}")
        prompts = [p.long() for p in prompts]
        for i, p in enumerate(prompts):
            if p.numel() and (p.min() < 0 or p.max() >= layout.vocab_size):
                raise ValueError(
                    f"prompt {i} holds ids outside [0, {layout.vocab_size}): min {int(p.min())}, max {int(p.max())}"
                    " (placeholders such as -200/-201 must be expanded before token generation)"
                )
        return [p.to(self.device) for p in prompts]

    def _context_limit(self) -> int | None:
        text_config = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        return getattr(text_config, "max_position_embeddings", None)

    # ---------------------------------------------------------------------------------------------- one stage

    def _generate_token_stage(
        self,
        prompts: list[torch.Tensor],
        start_token_id: int,
        end_token_id: int,
        allowed_ranges: list[tuple[int, int]],
        layout: VideoLavitTokenLayout,
        guidance_scale: float | None,
        do_sample: bool,
        top_k: int | None,
        top_p: float,
        temperature: float,
        max_new_tokens: int,
        min_new_tokens: int,
        generator: torch.Generator | None,
        batched_cfg: bool,
        extra_logits_processors: list | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Run one stage (keyframe or motion) for a batch of unpadded prompts.

        Each prompt gets ``start_token_id`` appended and is left-padded with the pad id (as the original).
        Returns ``(contexts, generated, raw)``: per sample the whole sequence and the continuation with every
        pad id deleted, and the raw padded ``[B, L + T]`` output of ``generate``.
        """
        batch_size = len(prompts)
        pad = layout.pad_token_id
        device = self.device
        lengths = [int(p.numel()) + 1 for p in prompts]
        length = max(lengths)
        limit = self._context_limit()
        if limit is not None and length + max_new_tokens > limit:
            raise ValueError(
                f"prompt of {length} tokens (incl. the start token) + max_new_tokens={max_new_tokens} exceeds the "
                f"model's context of {limit} positions"
            )
        input_ids = torch.full((batch_size, length), pad, dtype=torch.long, device=device)
        attention_mask = torch.zeros((batch_size, length), dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            input_ids[i, length - lengths[i] : -1] = p
            input_ids[i, -1] = start_token_id
            attention_mask[i, length - lengths[i] :] = 1

        use_cfg = guidance_scale is not None and guidance_scale != 1
        fused = use_cfg and batched_cfg
        if fused:
            # unconditional rows: only the start token is visible (transformers' default negative prompt)
            uncond_ids = torch.full_like(input_ids, pad)
            uncond_ids[:, -1] = start_token_id
            uncond_mask = torch.zeros_like(attention_mask)
            uncond_mask[:, -1] = 1
            input_ids = torch.cat([input_ids, uncond_ids])
            attention_mask = torch.cat([attention_mask, uncond_mask])

        processors = LogitsProcessorList()
        if fused:
            processors.append(BatchedClassifierFreeGuidanceLogitsProcessor(guidance_scale, batch_size))
        processors.append(MinNewTokensLengthLogitsProcessor(length, min_new_tokens, end_token_id, device=device))
        processors.append(TokenRangeLogitsProcessor(allowed_ranges, layout.vocab_size))
        if do_sample:
            if temperature is not None and temperature != 1.0:
                processors.append(TemperatureLogitsWarper(temperature))
            if top_k:
                processors.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
            if top_p is not None and top_p < 1.0:
                processors.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
        processors.extend(extra_logits_processors or [])
        if do_sample:
            processors.append(GeneratorSamplingLogitsProcessor(generator, batch_size))

        generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            num_return_sequences=1,
            bos_token_id=start_token_id,
            eos_token_id=end_token_id,
            pad_token_id=pad,
            use_cache=True,
            guidance_scale=guidance_scale if (use_cfg and not fused) else 1.0,
            return_dict_in_generate=False,
            **_neutralised_defaults(getattr(self, "generation_config", None)),
        )
        sequences = self.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=generation_config,
            logits_processor=processors,
        )
        sequences = sequences[:batch_size]
        contexts = [row[row != pad] for row in sequences]
        generated = [row[row != pad] for row in sequences[:, length:]]
        return contexts, generated, sequences

    # ---------------------------------------------------------------------------------------------- public API

    @torch.no_grad()
    def generate_image_tokens(
        self,
        input_ids=None,
        attention_mask: torch.Tensor | None = None,
        guidance_scale: float | None = 4.0,
        do_sample: bool = True,
        top_k: int | None = 50,
        top_p: float = 1.0,
        temperature: float = 1.0,
        max_new_tokens: int = 200,
        min_new_tokens: int = 20,
        generator: torch.Generator | None = None,
        batched_cfg: bool = True,
        logits_processor: list | None = None,
        codes_only: bool = False,
    ) -> ImageTokenGenerationOutput:
        """Text-to-image token generation: ``prompt ‖ [IMG]`` -> visual-code ids up to ``[/IMG]``.

        Args:
            input_ids: text ids (the original uses no BOS and no template): a padded ``[B, L]`` LongTensor with
                ``attention_mask``, or a list of 1-D id sequences.
            guidance_scale: LLM classifier-free guidance (4.0 as the released notebooks); ``None``/1 disables it.
            do_sample / top_k / top_p / temperature: sampling settings (notebook: top-k 50).
            generator: makes the sampling reproducible (`torch.Generator` on the model's device).
            batched_cfg: run the unconditional branch in the same forward (default) or as transformers'
                separate second forward.
            logits_processor: extra processors applied last, after the range restriction and the sampling
                warpers, right before the token is picked.
            codes_only: emit only visual codes and ``[/IMG]``. The original (``False``) also allows unk/bos/eos
                and ``[IMG]``, which are deleted afterwards and leave fewer codes than were generated.
        """
        layout = self.token_layout
        prompts = self._prompts_from_inputs(input_ids, attention_mask, layout)
        if not prompts:
            raise ValueError("generate_image_tokens needs `input_ids` (a text prompt per sample)")
        _check_counts(max_new_tokens, min_new_tokens)
        contexts, generated, _ = self._generate_token_stage(
            prompts, layout.image_start_token_id, layout.image_end_token_id,
            layout.keyframe_code_ranges if codes_only else layout.keyframe_allowed_ranges, layout, guidance_scale,
            do_sample, top_k, top_p, temperature, max_new_tokens, min_new_tokens, generator, batched_cfg,
            logits_processor,
        )
        return ImageTokenGenerationOutput(
            image_token_ids=generated,
            image_codes=[layout.keyframe_codes(g) for g in generated],
            sequences=contexts,
        )

    @torch.no_grad()
    def generate_video_tokens(
        self,
        input_ids=None,
        attention_mask: torch.Tensor | None = None,
        num_clips: int = 1,
        image_token_ids: list | None = None,
        guidance_scale_image: float | None = 4.0,
        guidance_scale_motion: float | None = 7.0,
        generator: torch.Generator | None = None,
        do_sample_image: bool = True,
        do_sample_motion: bool | None = None,
        top_k: int | None = 50,
        top_p: float = 1.0,
        temperature: float = 1.0,
        max_new_tokens: int | tuple[int, int] = 500,
        min_new_tokens: int | tuple[int, int] = 20,
        pad_motion_tokens: bool = True,
        batched_cfg: bool = True,
        show_progress: bool = True,
        token_layout: VideoLavitTokenLayout | None = None,
        codes_only: bool = False,
    ) -> VideoTokenGenerationOutput:
        """Keyframe + motion token generation, clip after clip (text-to-video, image-to-video, long video).

        Per clip: keyframe stage ``ctx ‖ [IMG]`` -> visual ids up to ``[/IMG]`` (CFG ``guidance_scale_image``,
        sampled), then motion stage ``ctx ‖ [MOV]`` -> motion ids up to ``[/MOV]`` (CFG
        ``guidance_scale_motion``). Every clip is appended to the whole previous sequence (long video); the
        unconditional branch always sees only the start token plus the stage's generated tokens.

        Args:
            input_ids: text prompt ids per sample (padded ``[B, L]`` + ``attention_mask``, or a list of 1-D
                sequences); may be omitted for pure image-to-video.
            num_clips: number of 24-frame clips to generate tokens for.
            image_token_ids: image-to-video: per sample the visual codes ``[K_i]`` of the given image (what the
                visual tokenizer's ``tokenize`` returns). The first clip then skips the keyframe stage and uses
                ``text ‖ [IMG] image [/IMG] ‖ [MOV]`` as the motion prompt.
            do_sample_motion: ``None`` = the original's choice: greedy in text-to-video, sampled in image-to-video.
            max_new_tokens / min_new_tokens: per stage (the original: 500 / 20); an int for both stages or a
                ``(keyframe, motion)`` pair.
            pad_motion_tokens: prune/pad each clip's motion ids to exactly ``motion_tokens_per_clip`` as the
                original (counts are reported in ``motion_token_counts``); ``False`` raises instead.
            generator: a `torch.Generator` making every sampled stage reproducible.
            token_layout: overrides the layout read from ``self.config`` (e.g. another clip length).
            codes_only: each stage emits only its codes and its end token, so min/max_new_tokens count codes. The
                original (``False``) also allows unk/bos/eos and the stage's start token, which are deleted
                afterwards: a keyframe then has fewer codes than were generated, a clip's motion ids are padded.

        Returns:
            :class:`VideoTokenGenerationOutput`.
        """
        layout = token_layout or self.token_layout
        if not isinstance(num_clips, int) or num_clips < 1:
            raise ValueError(f"num_clips must be a positive int, got {num_clips!r}")
        max_image, max_motion = _per_stage(max_new_tokens, "max_new_tokens")
        min_image, min_motion = _per_stage(min_new_tokens, "min_new_tokens")
        _check_counts(max_image, min_image)
        _check_counts(max_motion, min_motion)
        prompts = self._prompts_from_inputs(input_ids, attention_mask, layout)
        if image_token_ids is not None:
            if isinstance(image_token_ids, torch.Tensor) and image_token_ids.dim() == 1:
                raise ValueError("image_token_ids must hold one 1-D code tensor per sample (a list or a [B, K] tensor)")
            images = [layout.wrap_image_codes(torch.as_tensor(c)).to(self.device) for c in image_token_ids]
            if prompts and len(prompts) != len(images):
                raise ValueError(f"{len(prompts)} text prompts but {len(images)} images")
            prompts = [torch.cat([p, im]) for p, im in zip(prompts, images)] if prompts else images
        else:
            images = None
            if not prompts:
                raise ValueError("generate_video_tokens needs `input_ids`, `image_token_ids` or both")
        if do_sample_motion is None:
            do_sample_motion = images is not None

        batch_size = len(prompts)
        contexts = prompts
        keyframes = [[] for _ in range(batch_size)]
        motions, counts = [], []
        steps = logging.tqdm(total=2 * num_clips - (images is not None), desc="video tokens", disable=not show_progress)
        for clip in range(num_clips):
            if clip == 0 and images is not None:
                for i in range(batch_size):
                    keyframes[i].append(images[i])
            else:
                contexts, generated, _ = self._generate_token_stage(
                    contexts, layout.image_start_token_id, layout.image_end_token_id,
                    layout.keyframe_code_ranges if codes_only else layout.keyframe_allowed_ranges, layout,
                    guidance_scale_image, do_sample_image, top_k, top_p, temperature, max_image, min_image,
                    generator, batched_cfg,
                )
                for i in range(batch_size):
                    keyframes[i].append(generated[i])
                steps.update(1)
            contexts, generated, _ = self._generate_token_stage(
                contexts, layout.motion_start_token_id, layout.motion_end_token_id,
                layout.motion_code_ranges if codes_only else layout.motion_allowed_ranges, layout,
                guidance_scale_motion, do_sample_motion, top_k, top_p, temperature, max_motion, min_motion,
                generator, batched_cfg,
            )
            steps.update(1)
            pruned = [layout.prune_motion_ids(g) for g in generated]
            clip_counts = [c for _, c in pruned]
            wrong = [(i, c) for i, c in enumerate(clip_counts) if c != layout.motion_tokens_per_clip]
            if wrong:
                message = (
                    f"clip {clip}: expected {layout.motion_tokens_per_clip} motion tokens, the LLM produced "
                    + ", ".join(f"{c} (sample {i})" for i, c in wrong)
                )
                if not pad_motion_tokens:
                    raise ValueError(message)
                logger.warning(message + "; truncated / padded with motion code 0 as the original does")
            motions.append(torch.stack([ids for ids, _ in pruned]))
            counts.append(torch.tensor(clip_counts, dtype=torch.long))
        steps.close()

        motion_token_ids = torch.stack(motions, dim=1)
        return VideoTokenGenerationOutput(
            keyframe_token_ids=keyframes,
            keyframe_codes=[[layout.keyframe_codes(k) for k in sample] for sample in keyframes],
            motion_token_ids=motion_token_ids,
            motion_codes=motion_token_ids - layout.motion_token_offset,
            motion_token_counts=torch.stack(counts, dim=1),
            sequences=contexts,
        )


# fields of `model.generation_config` that would add a logits processor, with the value that adds none
_NEUTRAL_GENERATION_FIELDS = {
    # the stage's own MinNewTokensLengthLogitsProcessor must run after the CFG mix, so none from transformers
    "min_new_tokens": 0,
    "min_length": 0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "suppress_tokens": [],
    "begin_suppress_tokens": [],
    "renormalize_logits": False,
    "remove_invalid_values": False,
    "sequence_bias": None,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
}


def _neutralised_defaults(model_generation_config) -> dict:
    """``generate`` fills every unset field from ``model.generation_config`` (e.g. an understanding
    ``min_new_tokens``); return neutral values for the fields the model's config sets, and leave the others unset
    so that no no-op processor is added (each costs a pass over the vocabulary per step)."""
    if model_generation_config is None:
        return {}
    overrides = {}
    for name, neutral in _NEUTRAL_GENERATION_FIELDS.items():
        value = getattr(model_generation_config, name, None)
        if value is None or value == neutral:
            continue
        if neutral is None:
            # an unset value would be filled from the model again: it cannot be neutralised per call
            raise ValueError(
                f"model.generation_config.{name} = {value!r} would constrain keyframe/motion token generation; set "
                "it to None before calling generate_video_tokens / generate_image_tokens"
            )
        overrides[name] = neutral
    return overrides


def _per_stage(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a (keyframe, motion) pair, got {value!r}")
        return value[0], value[1]
    return value, value


def _check_counts(max_new_tokens: int, min_new_tokens: int) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if not isinstance(min_new_tokens, int) or not 0 <= min_new_tokens <= max_new_tokens:
        raise ValueError(f"min_new_tokens must be an int in [0, max_new_tokens={max_new_tokens}], got {min_new_tokens!r}")


__all__ = [
    "BatchedClassifierFreeGuidanceLogitsProcessor",
    "GeneratorSamplingLogitsProcessor",
    "ImageTokenGenerationOutput",
    "ScoreRecorder",
    "TokenRangeLogitsProcessor",
    "VideoLavitTokenLayout",
    "VideoLavitVideoTokenGenerationMixin",
    "VideoTokenGenerationOutput",
]
