# Copyright 2026 The Video-LaVIT authors and contributors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Video-LaVIT: a Llama language model that reads keyframes (continuous features) and motion (discrete tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.generation.utils import GenerateOutput
from transformers.modeling_outputs import BaseModelOutputWithPast
from transformers.utils import ModelOutput, logging

from .configuration_video_lavit import VideoLavitConfig
from .generation_video_lavit import VideoLavitVideoTokenGenerationMixin
from .modeling_motion_tokenizer import VideoLavitMotionTokenizer
from .modeling_visual_tokenizer import VideoLavitVisualTokenizer

logger = logging.get_logger(__name__)


@dataclass
class VideoLavitModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    Output of [`VideoLavitModel`]. When the input held image/video placeholders, the sequence dimension is that of
    the expanded (spliced) sequence, left-padded.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Hidden states of the last decoder layer.
        past_key_values (`Cache`, *optional*):
            Key/value cache of the decoder.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Hidden states of every layer, each `(batch_size, sequence_length, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention weights of every layer, each `(batch_size, num_heads, sequence_length, sequence_length)`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Attention mask of the sequence the decoder actually ran on (1 = token, 0 = left padding).
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Labels aligned with that sequence: `config.ignore_index` on padding and on every image/video position.
    """

    attention_mask: torch.LongTensor | None = None
    labels: torch.LongTensor | None = None


@dataclass
class VideoLavitCausalLMOutputWithPast(ModelOutput):
    r"""
    Output of [`VideoLavitForConditionalGeneration`].

    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*):
            Next-token cross-entropy over the positions whose label is not `config.ignore_index`.
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            Scores over the whole extended vocabulary (text, visual and motion ids).
        past_key_values (`Cache`, *optional*):
            Key/value cache of the decoder.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Hidden states of every layer, each `(batch_size, sequence_length, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention weights of every layer.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Attention mask of the (spliced) sequence the logits belong to.
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Labels of the (spliced) sequence, as used for `loss`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    attention_mask: torch.LongTensor | None = None
    labels: torch.LongTensor | None = None


@dataclass
class VideoLavitMultimodalEmbeddings(ModelOutput):
    r"""
    Input embeddings with every image/video placeholder expanded.

    Args:
        inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Spliced embeddings, left-padded with zero vectors.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            1 on real positions, 0 on the left padding.
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            `0 .. n_b - 1` on the real positions of row `b`, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Input labels carried over to the text positions; `config.ignore_index` on visual positions and padding.
    """

    inputs_embeds: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None
    position_ids: torch.LongTensor | None = None
    labels: torch.LongTensor | None = None


class VideoLavitPreTrainedModel(PreTrainedModel):
    config: VideoLavitConfig
    config_class = VideoLavitConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True


class VideoLavitModel(VideoLavitPreTrainedModel):
    r"""
    The Video-LaVIT base model: the keyframe tokenizer, the motion tokenizer and the Llama decoder (no LM head).

    Images and videos enter `input_ids` as placeholders (`config.image_placeholder_id`, `config.video_placeholder_id`)
    that are expanded here, as in the original understanding model:

    * image: `E[IMG] ‖ F ‖ E[/IMG]`, `F` the continuous keyframe features of the kept patches (`K` rows);
    * video with `n` clips: for each clip `E[IMG] ‖ F_c ‖ E[/IMG] ‖ E[MOV] ‖ E[motion ids] ‖ E[/MOV]`;

    where `E` is the decoder's input embedding. Padding (given by `attention_mask`) is removed before the expansion
    and every row is re-padded on the left afterwards.
    """

    def __init__(self, config: VideoLavitConfig):
        super().__init__(config)
        self.visual_tokenizer = VideoLavitVisualTokenizer._from_config(config.visual_tokenizer_config)
        self.motion_tokenizer = VideoLavitMotionTokenizer._from_config(config.motion_tokenizer_config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    # ------------------------------------------------------------------ visual inputs
    def get_visual_features(
        self, pixel_values: torch.FloatTensor, generator: torch.Generator | None = None
    ) -> list[torch.FloatTensor]:
        """Continuous keyframe features for understanding.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(num_images, 3, height, width)`): images / keyframes.
            generator (`torch.Generator`, *optional*): drives the token selector's Gumbel noise.

        Returns:
            `list[torch.FloatTensor]`: one `(K_i, hidden_size)` tensor per image (`K_i` kept patches).
        """
        return self.visual_tokenizer.encode_features(pixel_values, generator=generator)

    def get_motion_token_ids(self, motion_vectors: torch.FloatTensor) -> torch.LongTensor:
        """Motion codebook indices `(num_clips, num_motion_tokens)` of `motion_vectors` `(num_clips, 2, T, H, W)`."""
        return self.motion_tokenizer.encode(motion_vectors)

    def _check_input_ids(self, input_ids: torch.LongTensor) -> None:
        placeholder = (input_ids == self.config.image_placeholder_id) | (input_ids == self.config.video_placeholder_id)
        # read from the config: adapters (e.g. PEFT trainable tokens) wrap the embedding module
        vocab = self.config.text_config.vocab_size
        bad = ((input_ids < 0) & ~placeholder) | (input_ids >= vocab)
        if bad.any():
            values = sorted(set(input_ids[bad].tolist()))[:10]
            raise ValueError(
                f"input_ids must lie in [0, {vocab}) or be a placeholder ({self.config.image_placeholder_id} image, "
                f"{self.config.video_placeholder_id} video); got {values}"
            )

    def _collect_visual_blocks(
        self,
        placeholders: list[list[int]],
        pixel_values: torch.FloatTensor | None,
        motion_vectors: torch.FloatTensor | None,
        clips_per_video: torch.LongTensor | list[int] | None,
        visual_features: list[torch.FloatTensor] | None,
        motion_token_ids: torch.LongTensor | None,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> list[list[torch.FloatTensor]]:
        """Build the embedding block of every placeholder, per row, in order of appearance."""
        config = self.config
        embed = self.get_input_embeddings()
        n_images = sum(kind == config.image_placeholder_id for row in placeholders for kind in row)
        n_videos = sum(kind == config.video_placeholder_id for row in placeholders for kind in row)

        if pixel_values is not None and visual_features is not None:
            raise ValueError("pass either pixel_values or visual_features, not both")
        if motion_vectors is not None and motion_token_ids is not None:
            raise ValueError("pass either motion_vectors or motion_token_ids, not both")

        if n_videos:
            if clips_per_video is None:
                raise ValueError(f"input_ids hold {n_videos} video placeholder(s) but clips_per_video was not given")
            clips = [int(c) for c in torch.as_tensor(clips_per_video).reshape(-1).tolist()]
            if len(clips) != n_videos:
                raise ValueError(
                    f"input_ids hold {n_videos} video placeholder(s) but clips_per_video has {len(clips)} entries"
                )
            for v, count in enumerate(clips):
                if not 1 <= count <= config.max_clips:
                    raise ValueError(
                        f"video {v} has {count} clips; each video needs between 1 and max_clips={config.max_clips}"
                    )
        else:
            if clips_per_video is not None and torch.as_tensor(clips_per_video).numel() > 0:
                raise ValueError("clips_per_video was given but input_ids hold no video placeholder")
            clips = []
        n_visual = n_images + sum(clips)
        n_clips = sum(clips)

        if visual_features is None:
            if pixel_values is None:
                raise ValueError(
                    f"input_ids hold {n_images} image and {n_videos} video placeholder(s) "
                    f"({n_visual} images/keyframes) but neither pixel_values nor visual_features was given"
                )
            if pixel_values.ndim != 4 or pixel_values.shape[0] != n_visual:
                raise ValueError(
                    f"pixel_values must have shape ({n_visual}, channels, height, width) for the {n_images} image and "
                    f"{n_clips} keyframe placeholder rows; got {tuple(pixel_values.shape)}"
                )
            visual_features = self.get_visual_features(pixel_values, generator=generator)
        if len(visual_features) != n_visual:
            raise ValueError(
                f"input_ids need {n_visual} visual feature blocks ({n_images} images + {n_clips} keyframes), "
                f"got {len(visual_features)}"
            )
        hidden = config.text_config.hidden_size
        for i, feats in enumerate(visual_features):
            if feats.ndim != 2 or feats.shape[1] != hidden:
                raise ValueError(f"visual_features[{i}] must have shape (K, {hidden}); got {tuple(feats.shape)}")

        motion_embeds = None
        if n_clips:
            if motion_token_ids is None:
                if motion_vectors is None:
                    raise ValueError(
                        f"input_ids hold {n_videos} video placeholder(s) ({n_clips} clips) but neither motion_vectors "
                        "nor motion_token_ids was given"
                    )
                if motion_vectors.shape[0] != n_clips:
                    raise ValueError(
                        f"motion_vectors must have {n_clips} rows (one per clip); got shape {tuple(motion_vectors.shape)}"
                    )
                motion_token_ids = self.get_motion_token_ids(motion_vectors)
            motion_token_ids = torch.as_tensor(motion_token_ids)
            if motion_token_ids.ndim != 2 or motion_token_ids.shape[0] != n_clips:
                raise ValueError(
                    f"motion_token_ids must have shape ({n_clips}, num_motion_tokens); got "
                    f"{tuple(motion_token_ids.shape)}"
                )
            if motion_token_ids.numel() and (
                motion_token_ids.min() < 0 or motion_token_ids.max() >= config.motion_vocab_size
            ):
                raise ValueError(
                    f"motion_token_ids are codebook indices in [0, {config.motion_vocab_size}); got values in "
                    f"[{int(motion_token_ids.min())}, {int(motion_token_ids.max())}]"
                )
            motion_ids = motion_token_ids.to(device) + config.motion_token_offset
            start = torch.full_like(motion_ids[:, :1], config.motion_start_token_id)
            end = torch.full_like(motion_ids[:, :1], config.motion_end_token_id)
            motion_embeds = embed(torch.cat([start, motion_ids, end], dim=1))
        elif motion_vectors is not None or (motion_token_ids is not None and len(motion_token_ids)):
            raise ValueError("motion inputs were given but input_ids hold no video placeholder")

        markers = embed(
            torch.tensor([config.image_start_token_id, config.image_end_token_id], device=device)
        )

        def keyframe_block(feats):
            return torch.cat([markers[:1], feats.to(markers.dtype), markers[1:]], dim=0)

        blocks, next_visual, next_clip, next_video = [], 0, 0, 0
        for row in placeholders:
            row_blocks = []
            for kind in row:
                if kind == config.image_placeholder_id:
                    row_blocks.append(keyframe_block(visual_features[next_visual]))
                    next_visual += 1
                else:
                    pieces = []
                    for _ in range(clips[next_video]):
                        pieces += [keyframe_block(visual_features[next_visual]), motion_embeds[next_clip]]
                        next_visual += 1
                        next_clip += 1
                    row_blocks.append(torch.cat(pieces, dim=0))
                    next_video += 1
            blocks.append(row_blocks)
        return blocks

    def build_multimodal_embeddings(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        motion_vectors: torch.FloatTensor | None = None,
        clips_per_video: torch.LongTensor | None = None,
        visual_features: list[torch.FloatTensor] | None = None,
        motion_token_ids: torch.LongTensor | None = None,
        generator: torch.Generator | None = None,
    ) -> VideoLavitMultimodalEmbeddings:
        r"""
        Expand the image/video placeholders of `input_ids` into embeddings.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Token ids with placeholders; padding (where `attention_mask` is 0) may be on either side.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 on tokens, 0 on padding.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Labels aligned with `input_ids`.
            pixel_values (`torch.FloatTensor` of shape `(num_images + num_clips, 3, H, W)`, *optional*):
                Every image and keyframe, in the order their placeholders appear (row by row, left to right).
            motion_vectors (`torch.FloatTensor` of shape `(num_clips, 2, T, H, W)`, *optional*):
                Motion of every clip, in the same order.
            clips_per_video (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
                Clips of each video placeholder; a video consumes that many keyframes and motion rows.
            visual_features (`list[torch.FloatTensor]`, *optional*):
                Pre-computed keyframe features, one `(K_i, hidden_size)` tensor per image/keyframe, instead of
                `pixel_values`.
            motion_token_ids (`torch.LongTensor` of shape `(num_clips, num_motion_tokens)`, *optional*):
                Pre-computed motion codebook indices instead of `motion_vectors`.
            generator (`torch.Generator`, *optional*):
                Random source of the keyframe token selector.
        """
        config = self.config
        self._check_input_ids(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        keep = attention_mask.bool()
        rows = [input_ids[b][keep[b]] for b in range(input_ids.shape[0])]
        row_labels = [labels[b][keep[b]] for b in range(input_ids.shape[0])] if labels is not None else None
        placeholder_ids = (config.image_placeholder_id, config.video_placeholder_id)
        placeholders = [[int(t) for t in row.tolist() if t in placeholder_ids] for row in rows]
        if keep.logical_not().logical_and((input_ids == placeholder_ids[0]) | (input_ids == placeholder_ids[1])).any():
            raise ValueError("a placeholder lies on a padding position (attention_mask == 0)")

        blocks = self._collect_visual_blocks(
            placeholders, pixel_values, motion_vectors, clips_per_video, visual_features, motion_token_ids, generator,
            input_ids.device,
        )
        embed = self.get_input_embeddings()
        max_length = config.text_config.max_position_embeddings
        sequences, sequence_labels = [], []
        for b, row in enumerate(rows):
            is_placeholder = (row == placeholder_ids[0]) | (row == placeholder_ids[1])
            text_embeds = embed(row.masked_fill(is_placeholder, 0))
            cuts = [-1] + torch.nonzero(is_placeholder).flatten().tolist() + [row.shape[0]]
            pieces, label_pieces = [], []
            for i in range(len(cuts) - 1):
                pieces.append(text_embeds[cuts[i] + 1 : cuts[i + 1]])
                if row_labels is not None:
                    label_pieces.append(row_labels[b][cuts[i] + 1 : cuts[i + 1]])
                if i < len(blocks[b]):
                    pieces.append(blocks[b][i])
                    if row_labels is not None:
                        label_pieces.append(row_labels[b].new_full((blocks[b][i].shape[0],), config.ignore_index))
            sequence = torch.cat(pieces, dim=0)
            if sequence.shape[0] > max_length:
                raise ValueError(
                    f"row {b} expands to {sequence.shape[0]} positions (text + visual tokens), more than the "
                    f"context of {max_length} (text_config.max_position_embeddings); use fewer clips or a shorter prompt"
                )
            sequences.append(sequence)
            if row_labels is not None:
                sequence_labels.append(torch.cat(label_pieces, dim=0))

        # left padding, as generation needs and as the original re-pads
        length = max(s.shape[0] for s in sequences)
        batch = len(sequences)
        inputs_embeds = sequences[0].new_zeros(batch, length, sequences[0].shape[-1])
        new_mask = torch.zeros(batch, length, dtype=torch.long, device=inputs_embeds.device)
        position_ids = torch.zeros(batch, length, dtype=torch.long, device=inputs_embeds.device)
        new_labels = None
        if labels is not None:
            new_labels = torch.full((batch, length), config.ignore_index, dtype=labels.dtype, device=labels.device)
        for b, sequence in enumerate(sequences):
            n = sequence.shape[0]
            if n == 0:
                continue
            inputs_embeds[b, length - n :] = sequence
            new_mask[b, length - n :] = 1
            position_ids[b, length - n :] = torch.arange(n, device=inputs_embeds.device)
            if new_labels is not None:
                new_labels[b, length - n :] = sequence_labels[b]
        return VideoLavitMultimodalEmbeddings(
            inputs_embeds=inputs_embeds, attention_mask=new_mask, position_ids=position_ids, labels=new_labels
        )

    def has_visual_inputs(
        self, input_ids: torch.LongTensor | None, clips_per_video: torch.LongTensor | None = None, **visual_inputs
    ) -> bool:
        """Whether a call needs the placeholder expansion (placeholders in `input_ids` or any visual input).
        `clips_per_video` counts clips of video placeholders, so giving it to a call without any raises `ValueError`.
        """
        if any(v is not None for v in visual_inputs.values()):
            return True
        if input_ids is not None and bool(
            ((input_ids == self.config.image_placeholder_id) | (input_ids == self.config.video_placeholder_id)).any()
        ):
            return True
        if clips_per_video is not None and torch.as_tensor(clips_per_video).numel() > 0:
            raise ValueError("clips_per_video was given but input_ids hold no video placeholder")
        return False

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        motion_vectors: torch.FloatTensor | None = None,
        clips_per_video: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        visual_features: list[torch.FloatTensor] | None = None,
        motion_token_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> VideoLavitModelOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Token ids, possibly holding image/video placeholders.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 on tokens, 0 on padding.
            pixel_values, motion_vectors, clips_per_video, visual_features, motion_token_ids, generator:
                Visual inputs, see [`~VideoLavitModel.build_multimodal_embeddings`].
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Only carried through the expansion (returned as `labels`); no loss is computed here.
            position_ids, past_key_values, inputs_embeds, use_cache:
                As for `LlamaModel`. With placeholders, `position_ids` are rebuilt for the expanded sequence.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None and self.has_visual_inputs(
            input_ids,
            clips_per_video=clips_per_video,
            pixel_values=pixel_values,
            motion_vectors=motion_vectors,
            visual_features=visual_features,
            motion_token_ids=motion_token_ids,
        ):
            if past_key_values is not None and past_key_values.get_seq_length() > 0:
                raise ValueError("image/video placeholders can only be expanded in the first (uncached) forward")
            spliced = self.build_multimodal_embeddings(
                input_ids,
                attention_mask=attention_mask,
                labels=labels,
                pixel_values=pixel_values,
                motion_vectors=motion_vectors,
                clips_per_video=clips_per_video,
                visual_features=visual_features,
                motion_token_ids=motion_token_ids,
                generator=generator,
            )
            inputs_embeds, attention_mask, labels = spliced.inputs_embeds, spliced.attention_mask, spliced.labels
            position_ids = spliced.position_ids
        elif inputs_embeds is None:
            self._check_input_ids(input_ids)
            inputs_embeds = self.get_input_embeddings()(input_ids)

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return VideoLavitModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attention_mask=attention_mask,
            labels=labels,
        )


class VideoLavitForConditionalGeneration(VideoLavitPreTrainedModel, VideoLavitVideoTokenGenerationMixin, GenerationMixin):
    r"""
    Video-LaVIT with its language-model head: video/image question answering (`generate` with visual inputs),
    training loss (`labels`), and keyframe/motion token generation (`generate_image_tokens`,
    `generate_video_tokens` from [`VideoLavitVideoTokenGenerationMixin`]).
    """

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    output_modalities = ("text",)

    def __init__(self, config: VideoLavitConfig):
        super().__init__(config)
        self.model = VideoLavitModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()
        if self.generation_config is not None:
            # the original understanding runner decodes greedily with up to 512 new tokens. Its `min_length=8`
            # (min_new_tokens) is not made a default: generation-config defaults leak into every `generate` call,
            # including keyframe/motion token generation.
            self.generation_config.do_sample = False
            self.generation_config.max_new_tokens = 512

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    @property
    def visual_tokenizer(self) -> VideoLavitVisualTokenizer:
        return self.model.visual_tokenizer

    @property
    def motion_tokenizer(self) -> VideoLavitMotionTokenizer:
        return self.model.motion_tokenizer

    @property
    def language_model(self):
        return self.model.language_model

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        motion_vectors: torch.FloatTensor | None = None,
        clips_per_video: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        visual_features: list[torch.FloatTensor] | None = None,
        motion_token_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> VideoLavitCausalLMOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Token ids as the processor returns them, with `config.image_placeholder_id` /
                `config.video_placeholder_id` where images/videos go.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 on tokens, 0 on padding (either side).
            pixel_values (`torch.FloatTensor` of shape `(num_images + num_clips, 3, H, W)`, *optional*):
                Images and keyframes in placeholder order.
            motion_vectors (`torch.FloatTensor` of shape `(num_clips, 2, 24, 20, 36)`, *optional*):
                Motion of every clip.
            clips_per_video (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
                Number of clips of each video placeholder (at most `config.max_clips`).
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Labels aligned with `input_ids` (`config.ignore_index` = no loss); image/video positions never carry
                a loss. The loss is the mean next-token cross-entropy over the expanded sequence.
            visual_features (`list[torch.FloatTensor]`, *optional*):
                Pre-computed keyframe features `(K_i, hidden_size)` instead of `pixel_values`.
            motion_token_ids (`torch.LongTensor` of shape `(num_clips, num_motion_tokens)`, *optional*):
                Pre-computed motion codebook indices instead of `motion_vectors`.
            position_ids, past_key_values, inputs_embeds, use_cache, logits_to_keep:
                As for `LlamaForCausalLM`.
            generator (`torch.Generator`, *optional*):
                Random source of the keyframe token selector (its keep decision is sampled).

        Returns:
            [`VideoLavitCausalLMOutputWithPast`]: `logits` of shape `(batch_size, expanded_length, vocab_size)`, and
            the `attention_mask`/`labels` of the expanded sequence.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            motion_vectors=motion_vectors,
            clips_per_video=clips_per_video,
            labels=labels,
            visual_features=visual_features,
            motion_token_ids=motion_token_ids,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            generator=generator,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits,
                labels=outputs.labels,
                vocab_size=self.config.text_config.vocab_size,
                ignore_index=self.config.ignore_index,
                **kwargs,
            )
        return VideoLavitCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attention_mask=outputs.attention_mask,
            labels=outputs.labels,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        motion_vectors: torch.FloatTensor | None = None,
        clips_per_video: torch.LongTensor | None = None,
        visual_features: list[torch.FloatTensor] | None = None,
        motion_token_ids: torch.LongTensor | None = None,
        text_only: bool | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> GenerateOutput | torch.LongTensor:
        r"""
        Generate text about images/videos (understanding), or plain continuation when no visual input is given.

        With visual inputs the placeholders are expanded into `inputs_embeds` once, then
        [`~GenerationMixin.generate`] decodes with the KV cache. The defaults follow the original understanding
        runner: greedy decoding, up to 512 new tokens (see `generation_config`), stop on EOS; pass
        `min_new_tokens=8` for the runner's minimum answer length.

        Args:
            input_ids, attention_mask, pixel_values, motion_vectors, clips_per_video, visual_features,
            motion_token_ids:
                As in [`~VideoLavitForConditionalGeneration.forward`]; typically `**processor(text=..., videos=...)`.
            text_only (`bool`, *optional*):
                Block every id `>= config.text_vocab_size` (visual/motion ids) with a suppression logits processor.
                Defaults to `True` when visual inputs are given (the understanding model can only answer in text)
                and `False` otherwise.
            generator (`torch.Generator`, *optional*):
                Random source of the keyframe token selector.
            kwargs:
                Generation arguments (`max_new_tokens`, `do_sample`, `logits_processor`, `tokenizer`, ...). With a
                `tokenizer` and `text_only`, decoding also stops on `config.answer_stop_string` unless
                `stop_strings` is given.

        Returns:
            `torch.LongTensor` of shape `(batch_size, prompt_length + new_tokens)` (or a `GenerateOutput` whose
            `sequences` has that shape): the prompt ids as given (placeholders included) followed by the new ids.
        """
        multimodal = self.model.has_visual_inputs(
            input_ids,
            clips_per_video=clips_per_video,
            pixel_values=pixel_values,
            motion_vectors=motion_vectors,
            visual_features=visual_features,
            motion_token_ids=motion_token_ids,
        )
        if text_only is None:
            text_only = multimodal
        if text_only and kwargs.get("suppress_tokens") is None:
            kwargs["suppress_tokens"] = list(range(self.config.text_vocab_size, self.config.text_config.vocab_size))
            if kwargs.get("tokenizer") is not None and kwargs.get("stop_strings") is None:
                kwargs["stop_strings"] = [self.config.answer_stop_string]
        if not multimodal:
            return super().generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if input_ids is None:
            raise ValueError("visual inputs need input_ids holding their placeholders")
        if kwargs.get("inputs_embeds") is not None:
            raise ValueError("pass either input_ids with placeholders or inputs_embeds, not both")

        spliced = self.model.build_multimodal_embeddings(
            input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            motion_vectors=motion_vectors,
            clips_per_video=clips_per_video,
            visual_features=visual_features,
            motion_token_ids=motion_token_ids,
            generator=generator,
        )
        outputs = super().generate(
            inputs_embeds=spliced.inputs_embeds, attention_mask=spliced.attention_mask, **kwargs
        )
        # GenerationMixin returns only the new ids when it starts from embeddings; put the prompt back in front
        prompt = input_ids.to(self.device)
        sequences = outputs if isinstance(outputs, torch.Tensor) else outputs.sequences
        # num_return_sequences > 1 returns that many consecutive rows per prompt
        prompt = prompt.repeat_interleave(sequences.shape[0] // prompt.shape[0], dim=0)
        if isinstance(outputs, torch.Tensor):
            return torch.cat([prompt, outputs], dim=1)
        outputs.sequences = torch.cat([prompt, outputs.sequences], dim=1)
        return outputs


__all__ = ["VideoLavitPreTrainedModel", "VideoLavitModel", "VideoLavitForConditionalGeneration"]
