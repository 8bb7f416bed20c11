"""Video processor of Video-LaVIT: keyframes + motion-vector clips from a video, torchvision-free.

A video is resampled to a constant frame rate, re-encoded in memory as MPEG-4 Part 2 and decoded with
motion-vector export (see :mod:`.motion_vectors`). I-frames of regular 12-frame GOPs start 24-frame clips;
each clip gives one keyframe (the I-frame, through the image eval transform) and one motion tensor
``[2, 24, 20, 36]`` (per-macroblock max-pooled, normalised displacements, bicubic-resized).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import ImagesKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .motion_vectors import ReencodeSettings, decode_intra_packet, pool_motion_vectors_batch, reencode_video

MODES = ("understanding", "reconstruction")
NO_VECTOR = -10000.0
POOL_BATCH = 48


class VideoLavitVideoProcessorKwargs(ImagesKwargs, total=False):
    """Keyword arguments of :class:`VideoLavitVideoProcessor` (see the class docstring)."""

    mode: str
    target_fps: float
    reconstruction_fps: float
    frames_per_clip: int
    keyframe_interval: int
    max_clips: int
    motion_size: dict
    motion_std: list
    motion_rescale_factor: float
    motion_antialias: bool
    encoder_threads: int
    encoder_bit_rate: int
    max_pixels: int
    autorotate: bool
    reconstruction_size: dict
    reconstruction_motion_downsample: int
    show_progress: bool


@dataclass
class VideoMotionData:
    """Everything extracted from one video (before stacking into a batch).

    frame_types: picture type per frame of the resampled stream; clip_starts: keyframe indices;
    keyframes: uint8 ``[H, W, 3]`` RGB of each keyframe; pooled: float32 ``[T_clip, 2, gh, gw]`` per clip (after
    max-pool, sentinel removal and the mid-clip fix, the input of the resize); motion: float32
    ``[2, T_clip, H_m, W_m]`` per clip; fps: the resampling rate; size: (height, width) of the re-encoded frames.
    """

    frame_types: str
    clip_starts: list[int]
    keyframes: list[np.ndarray]
    pooled: list[torch.Tensor] = field(default_factory=list)
    motion: list[torch.Tensor] = field(default_factory=list)
    fps: float = 6.0
    size: tuple[int, int] = (0, 0)


def select_clip_starts(frame_types: str, frames_per_clip: int, keyframe_interval: int, max_clips: int) -> list[int]:
    """Keyframe (clip start) indices of the understanding path, as the original sampler chooses them.

    Starts are I-frames followed by a regular GOP (next I-frame ``keyframe_interval`` later) with
    ``frames_per_clip`` frames of room; when fewer than two exist all I-frames are used instead (those clips may
    need padding). Every second start is taken beginning with the second (the first when there are at most
    two); over ``2 * max_clips`` starts, ``max_clips`` are spread evenly.
    """
    if max_clips < 1:
        raise ValueError(f"max_clips must be >= 1, got {max_clips}")
    total = len(frame_types)
    starts = np.array([i for i, t in enumerate(frame_types) if t == "I"], dtype=np.int64)
    if starts.size == 0:
        raise ValueError(f"the re-encoded video has no I-frame among its {total} frames")
    if starts.size > 1:
        regular = starts[:-1][starts[:-1] + keyframe_interval == starts[1:]]
    else:
        regular = starts
    regular = regular[regular + frames_per_clip <= total]
    if regular.size >= 2:
        starts = regular
    if starts.size / 2 <= max_clips:
        chosen = starts[1::2] if starts.size > 2 else starts[0::2]
    else:
        starts = starts[1::2]
        if starts.size > max_clips:
            chosen = starts[np.linspace(0, starts.size - 1, max_clips).astype(np.int64)]
        else:
            chosen = starts
    return [int(i) for i in chosen]


def regular_clip_starts(frame_types: str, frames_per_clip: int, keyframe_interval: int) -> list[int]:
    """I-frames that start a regular GOP and have ``frames_per_clip`` frames of room (reconstruction path)."""
    starts = np.array([i for i, t in enumerate(frame_types) if t == "I"], dtype=np.int64)
    if starts.size > 1:
        starts = starts[:-1][starts[:-1] + keyframe_interval == starts[1:]]
    return [int(i) for i in starts[starts + frames_per_clip <= len(frame_types)]]


def clip_motion_tensor(
    grids: list,
    start: int,
    frames_per_clip: int,
    frame_size: tuple[int, int],
    std: tuple[float, float],
    intra_offset: int,
) -> torch.Tensor:
    """Pooled, normalised motion of frames ``start .. start + frames_per_clip - 1`` (missing frames padded).

    grids: per frame ``[2, gh, gw]`` float32 pixel displacements (``-inf`` = no vector) or ``None``.
    Returns float32 ``[frames_per_clip, 2, gh, gw]``: displacement / frame size / std, no-vector cells -> 0, and
    frame ``intra_offset`` (the mid-clip I-frame) replaced by the mean of its neighbours.
    """
    height, width = frame_size
    grid_h, grid_w = -(-height // 16), -(-width // 16)
    clip = np.full((frames_per_clip, 2, grid_h, grid_w), NO_VECTOR, dtype=np.float32)
    filled = [t for t in range(frames_per_clip) if start + t < len(grids) and grids[start + t] is not None]
    if filled:
        raw = np.stack([grids[start + t] for t in filled])
        # same operation order as the original (d / size) / std, in float64, then float32
        value = raw.astype(np.float64) / np.array([width, height], dtype=np.float64)[None, :, None, None]
        value = (value / np.array(std, dtype=np.float64)[None, :, None, None]).astype(np.float32)
        clip[filled] = np.where(np.isfinite(raw), np.maximum(value, NO_VECTOR), NO_VECTOR)
    clip[clip < -1000] = 0.0
    motion = torch.from_numpy(clip)
    if 0 < intra_offset < frames_per_clip - 1:
        pair = torch.stack([motion[intra_offset - 1], motion[intra_offset + 1]]).permute(1, 0, 2, 3)[None]
        # trilinear x1.5 on a 2-frame axis: its middle sample is the original's fix value
        middle = torch.nn.functional.interpolate(pair, scale_factor=(1.5, 1.0, 1.0), mode="trilinear")[0]
        motion[intra_offset] = middle[:, 1]
    return motion


def resize_motion(pooled: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bicubic resize (``align_corners=False``) of ``[T, 2, gh, gw]`` to ``[2, T, H, W]``."""
    resized = torch.nn.functional.interpolate(
        pooled, size=size, mode="bicubic", align_corners=False, antialias=antialias
    )
    return resized.permute(1, 0, 2, 3).contiguous()


def _is_single_video(video) -> bool:
    if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(video, "read"):
        return True
    if isinstance(video, (np.ndarray, torch.Tensor)):
        return video.ndim == 4
    if isinstance(video, (list, tuple)):
        return len(video) > 0 and all(isinstance(f, Image.Image) or (hasattr(f, "ndim") and f.ndim == 3) for f in video)
    return False


def _frames_array(video, name: str) -> np.ndarray | list:
    """Decoded frames as ``[T, H, W, 3]`` uint8 (array or list of arrays), validated."""
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if isinstance(video, (list, tuple)):
        frames = [np.asarray(f.convert("RGB")) if isinstance(f, Image.Image) else np.asarray(f) for f in video]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"{name}: all frames must have one shape, got {sorted(shapes)}")
        video = np.stack(frames)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"{name}: decoded frames must be [T, H, W, 3] RGB, got shape {tuple(video.shape)}")
    if video.dtype != np.uint8:
        raise ValueError(f"{name}: decoded frames must be uint8 in 0..255, got dtype {video.dtype}")
    if video.shape[0] == 0:
        raise ValueError(f"{name}: decoded frames are empty (T = 0)")
    return video


class VideoLavitVideoProcessor(VideoProcessorMixin, PilBackend):
    r"""Keyframes and motion-vector clips of videos, as Video-LaVIT's tokenizers consume them.

    Call ``processor(videos, return_tensors="pt")`` with one video or a list: paths, bytes, binary file objects,
    or decoded frames (``[T, H, W, 3]`` uint8 arrays/tensors or lists of PIL images) together with their frame
    rate ``fps=`` (a number, or one per video).

    Understanding mode (default): resample to ``target_fps`` (6), re-encode (MPEG-4 Part 2, ``encoder_bit_rate``,
    GOP ``keyframe_interval``, ``encoder_threads`` slice threads), select up to ``max_clips`` keyframes, and
    return

    - ``pixel_values`` ``[N_clips, 3, 224, 224]``: keyframes through the image eval transform,
    - ``motion_vectors`` ``[N_clips, 2, frames_per_clip, 20, 36]``: displacements divided by frame size and by
      ``motion_std / motion_rescale_factor``,
    - ``clips_per_video`` ``[N_videos]``, ``keyframe_indices`` ``[N_clips]`` (frame index at ``target_fps``),
      ``keyframe_timestamps`` ``[N_clips]`` (seconds).

    Reconstruction mode (``mode="reconstruction"``, the original's reconstruction notebook): ``reconstruction_fps``
    (12), plain ``motion_std``, one random regular clip per video (``clip_start=`` fixes it, ``seed=`` draws like
    ``np.random.RandomState(seed).choice``, ``generator=`` draws with torch), motion resized to
    ``reconstruction_size / reconstruction_motion_downsample`` and ``pixel_values`` = the keyframe resized to
    ``reconstruction_size`` (PIL bicubic) scaled to [-1, 1].

    ``show_progress``: ``True``/``False`` force the tqdm bar on/off; by default it appears on a terminal once
    decoding has run for 2 s.

    ``motion_antialias=True`` reproduces torchvision>=0.17's antialiased tensor resize; the released model was
    trained with the non-antialiased one (default). Rotated videos (display matrix of a multiple of 90 degrees)
    are turned upright like the ffmpeg CLI does (``autorotate``).
    """

    valid_kwargs = VideoLavitVideoProcessorKwargs
    model_input_names = ["pixel_values", "motion_vectors", "clips_per_video"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = False
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    mode = "understanding"
    target_fps = 6.0
    reconstruction_fps = 12.0
    frames_per_clip = 24
    keyframe_interval = 12
    max_clips = 16
    motion_size = {"height": 20, "width": 36}
    motion_std = [0.0993703, 0.1130276]
    motion_rescale_factor = 10.0
    motion_antialias = False
    encoder_threads = 16
    encoder_bit_rate = 8_000_000
    max_pixels = 3840 * 2160
    autorotate = True
    reconstruction_size = {"height": 320, "width": 576}
    reconstruction_motion_downsample = 8
    show_progress = None

    def __call__(self, videos, **kwargs) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def _options(self, kwargs: dict) -> dict:
        unknown = set(kwargs) - set(self.valid_kwargs.__annotations__)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; valid: {sorted(self.valid_kwargs.__annotations__)}")
        options = {k: kwargs.get(k, getattr(self, k, None)) for k in self.valid_kwargs.__annotations__}
        if options["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {options['mode']!r}")
        for key in ("target_fps", "reconstruction_fps"):
            if not options[key] or options[key] <= 0:
                raise ValueError(f"{key} must be positive, got {options[key]!r}")
        if options["frames_per_clip"] <= options["keyframe_interval"]:
            raise ValueError(
                f"frames_per_clip ({options['frames_per_clip']}) must exceed keyframe_interval "
                f"({options['keyframe_interval']})"
            )
        return options

    def extract(
        self,
        video,
        fps: float | None = None,
        clip_start: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> VideoMotionData:
        """Run the pipeline on one video and keep the intermediate results (see :class:`VideoMotionData`)."""
        options = self._options(kwargs)
        reconstruction = options["mode"] == "reconstruction"
        rate = options["reconstruction_fps"] if reconstruction else options["target_fps"]
        settings = ReencodeSettings(
            fps=rate, bit_rate=options["encoder_bit_rate"], encoder_threads=options["encoder_threads"],
            gop_size=options["keyframe_interval"], max_pixels=options["max_pixels"], autorotate=options["autorotate"],
        )
        if not isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) and not hasattr(video, "read"):
            video = _frames_array(video, "decoded frames")
        elif fps is not None:
            raise ValueError("fps= describes decoded frames; a video file carries its own frame rate")

        types, grids, packets, frame_size = self._scan(video, fps, settings, options["show_progress"])
        frames_per_clip, interval = options["frames_per_clip"], options["keyframe_interval"]
        if reconstruction:
            starts = self._reconstruction_start(types, frames_per_clip, interval, clip_start, seed, generator)
        else:
            starts = select_clip_starts(types, frames_per_clip, interval, options["max_clips"])
        std = tuple(float(s) for s in options["motion_std"])
        if not reconstruction:
            std = tuple(s / float(options["motion_rescale_factor"]) for s in std)
        if reconstruction:
            size = options["reconstruction_size"]
            step = options["reconstruction_motion_downsample"]
            motion_hw = (int(size["height"]) // step, int(size["width"]) // step)
        else:
            motion_hw = (int(options["motion_size"]["height"]), int(options["motion_size"]["width"]))
        data = VideoMotionData(frame_types=types, clip_starts=starts, keyframes=[], fps=float(rate), size=frame_size)
        for start in starts:
            data.keyframes.append(decode_intra_packet(packets[start]).to_ndarray(format="rgb24"))
            pooled = clip_motion_tensor(grids, start, frames_per_clip, frame_size, std, intra_offset=interval)
            data.pooled.append(pooled)
            data.motion.append(resize_motion(pooled, motion_hw, bool(options["motion_antialias"])))
        return data

    def _scan(self, video, fps, settings, show_progress):
        from tqdm.auto import tqdm

        types, grids, packets = [], [], {}
        pending = []  # motion-vector tables awaiting pooling (at most POOL_BATCH frames)
        frame_size = None
        estimate = None
        if isinstance(video, np.ndarray):
            estimate = len(video)
        # default (None): a bar only on a terminal and only once decoding has taken 2 s, i.e. for long videos
        disable = (not show_progress) if show_progress is not None else None
        delay = 0 if show_progress else 2
        progress = tqdm(total=estimate, unit="frame", desc="decoding video", disable=disable, leave=False, delay=delay)
        try:
            for item in reencode_video(video, settings, frames_fps=fps, progress=progress):
                if item.index != len(types):
                    raise ValueError(f"re-encoded frame {item.index} arrived at position {len(types)}")
                if frame_size is None:
                    frame_size = (item.frame.height, item.frame.width)
                types.append(item.frame_type)
                pending.append(item.motion_vectors)
                if len(pending) == POOL_BATCH:
                    grids.extend(pool_motion_vectors_batch(pending, *frame_size))
                    pending.clear()
                if item.frame_type == "I":
                    if item.packet is None:
                        raise ValueError(f"I-frame {item.index} has no intra packet")
                    packets[item.index] = item.packet
        finally:
            progress.close()
        if pending:
            grids.extend(pool_motion_vectors_batch(pending, *frame_size))
        return "".join(types), grids, packets, frame_size

    @staticmethod
    def _reconstruction_start(types, frames_per_clip, interval, clip_start, seed, generator) -> list[int]:
        valid = regular_clip_starts(types, frames_per_clip, interval)
        if not valid:
            raise ValueError(
                f"no clip of {frames_per_clip} frames starts at a regular I-frame in this video "
                f"({len(types)} frames, types {types[:60]}{'...' if len(types) > 60 else ''})"
            )
        if clip_start is not None:
            if int(clip_start) not in valid:
                raise ValueError(f"clip_start={clip_start} is not a valid clip start; valid starts: {valid}")
            return [int(clip_start)]
        if seed is not None:
            return [int(np.random.RandomState(seed).choice(valid))]
        if generator is not None:
            return [valid[int(torch.randint(len(valid), (1,), generator=generator))]]
        return [int(np.random.choice(valid))]

    def _keyframe_pixels(self, keyframe: np.ndarray, options: dict) -> np.ndarray:
        if options["mode"] == "reconstruction":
            size = options["reconstruction_size"]
            image = Image.fromarray(keyframe).resize((int(size["width"]), int(size["height"])), Image.BICUBIC)
            return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0 * 2.0 - 1.0
        size = options["size"]
        return PilBackend._preprocess(
            self, [keyframe.transpose(2, 0, 1)], do_resize=options["do_resize"],
            size=size if hasattr(size, "height") else self._standardize_kwargs(size=size)["size"],
            resample=options["resample"], do_center_crop=False, crop_size=None, do_rescale=options["do_rescale"],
            rescale_factor=options["rescale_factor"], do_normalize=options["do_normalize"],
            image_mean=options["image_mean"], image_std=options["image_std"], do_pad=False, pad_size=None,
            return_tensors=None,
        )["pixel_values"][0]

    def preprocess(
        self,
        videos,
        fps=None,
        clip_start=None,
        seed=None,
        generator=None,
        return_tensors=None,
        **kwargs,
    ) -> BatchFeature:
        if videos is None or (isinstance(videos, (list, tuple)) and len(videos) == 0):
            raise ValueError("no video given")
        batch = [videos] if _is_single_video(videos) else list(videos)
        if isinstance(videos, np.ndarray) and videos.ndim == 5:
            batch = list(videos)
        for i, video in enumerate(batch):
            if not _is_single_video(video):
                raise TypeError(
                    f"video {i}: expected a path, bytes, a binary file object or [T, H, W, 3] frames, got "
                    f"{type(video).__name__}" + (f" with shape {tuple(video.shape)}" if hasattr(video, "shape") else "")
                )
        rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(batch)
        if len(rates) != len(batch):
            raise ValueError(f"got {len(rates)} fps values for {len(batch)} videos")
        options = self._options(kwargs)
        pixel_values, motion, counts, indices, times = [], [], [], [], []
        for video, rate in zip(batch, rates):
            data = self.extract(video, fps=rate, clip_start=clip_start, seed=seed, generator=generator, **kwargs)
            counts.append(len(data.clip_starts))
            for start, keyframe, clip in zip(data.clip_starts, data.keyframes, data.motion):
                pixel_values.append(self._keyframe_pixels(keyframe, options))
                motion.append(clip.numpy())
                indices.append(start)
                times.append(start / data.fps)
        output = {
            "pixel_values": np.stack(pixel_values).astype(np.float32),
            "motion_vectors": np.stack(motion).astype(np.float32),
            "clips_per_video": np.array(counts, dtype=np.int64),
            "keyframe_indices": np.array(indices, dtype=np.int64),
            "keyframe_timestamps": np.array(times, dtype=np.float32),
        }
        return BatchFeature(data=output, tensor_type=return_tensors)


__all__ = ["VideoLavitVideoProcessor", "VideoMotionData", "select_clip_starts", "regular_clip_starts"]
