# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Synthetic video-text data for the miniature Video-LaVIT: one coloured shape moving in a straight line.

Every sample is drawn from a :class:`SceneSpec` (colour, shape, direction, start position, size, speed, frame rate,
resolution, background level). :func:`render_frames` draws the scene at any time stamp (so the same scene can be
rendered at the source frame rate for the mp4 and at the 6 fps clip rate for the video detokenizer's targets), and
:func:`encode_scene` writes the video with PyAV. :func:`build_dataset` returns a ``datasets.Dataset`` of mp4 bytes
with the caption ``a {colour} {shape} moves {direction}`` and a question-answer pair whose answer names colour,
shape and direction.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 245),
    "yellow": (235, 220, 40),
    "white": (240, 240, 240),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# (dx, dy) unit steps in image coordinates (+y is down)
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

CAPTION_TEMPLATE = "a {colour} {shape} moves {direction}"
# (question, answer template): every answer names colour, shape and direction
QA_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Describe this video.", "a {colour} {shape} moves {direction}"),
    ("What is moving in this video, and where does it go?", "a {colour} {shape} moves {direction}"),
    ("Which way does the shape move?", "the {colour} {shape} moves {direction}"),
    ("What happens in this clip?", "a {colour} {shape} moves {direction}"),
    ("Describe the motion in the video.", "the {colour} {shape} moves {direction}"),
    ("What colour is the shape, and where does it go?", "the {colour} {shape} moves {direction}"),
)
# frame rates, resolutions (width, height) and codecs of the training renderer; the evaluation's "other renderer"
# uses others (video_lavit.mini.evaluate.OTHER_*)
TRAIN_FPS: tuple[float, ...] = (6.0, 8.0, 10.0, 12.0, 20.0, 30.0)
TRAIN_SIZES: tuple[tuple[int, int], ...] = (
    (56, 56), (64, 48), (64, 64), (72, 72), (80, 64), (96, 80), (96, 96), (104, 104), (144, 112),
)
# h264 and MPEG-4 Part 2 sources: the processor's re-encode of MPEG-family sources usually adds I-frames, so the
# original clip sampler then cuts two partly padded clips instead of one (the model must read both layouts)
TRAIN_CODECS: tuple[str, ...] = ("libx264", "mpeg4")
# container for each codec encode_scene knows (webm for the VP codecs, mp4 otherwise)
CONTAINERS: dict[str, str] = {"libvpx": "webm", "libvpx-vp9": "webm"}
CLIP_SECONDS = 4.0  # exactly 24 frames at the processor's 6 fps: one clip, starting at frame 0


def vocabulary() -> list[str]:
    """Every word of the captions, questions and answers (one token each in the miniature tokenizer)."""
    words = set(COLOURS) | set(SHAPES) | set(DIRECTIONS)
    for question, answer in QA_TEMPLATES:
        words |= set(question.replace("?", " ").replace(".", " ").replace(",", " ").split())
        words |= set(answer.replace("{", " ").replace("}", " ").split())
    return sorted(words)


@dataclass
class SceneSpec:
    """One synthetic scene. Positions/sizes are fractions of the frame's shorter side; speed is in shorter sides per
    second; ``x0``/``y0`` is the shape centre at time 0 (as fractions of width / height)."""

    colour: str
    shape: str
    direction: str
    x0: float
    y0: float
    size: float
    speed: float
    fps: float
    width: int
    height: int
    background: int
    seconds: float = CLIP_SECONDS

    def __post_init__(self):
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {sorted(COLOURS)}, got {self.colour!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {self.direction!r}")
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even and >= 16, got {self.width} x {self.height}")

    @property
    def caption(self) -> str:
        return CAPTION_TEMPLATE.format(colour=self.colour, shape=self.shape, direction=self.direction)

    def centre(self, t: float) -> tuple[float, float]:
        """Shape centre in pixels at time ``t`` seconds."""
        side = min(self.width, self.height)
        dx, dy = DIRECTIONS[self.direction]
        return (self.x0 * self.width + dx * self.speed * side * t, self.y0 * self.height + dy * self.speed * side * t)


def random_scene(
    rng: np.random.Generator,
    colour: str | None = None,
    shape: str | None = None,
    direction: str | None = None,
    fps_choices: tuple[float, ...] = TRAIN_FPS,
    size_choices: tuple[tuple[int, int], ...] = TRAIN_SIZES,
) -> SceneSpec:
    """A scene whose shape stays fully inside the frame for the whole clip (start, size and speed random)."""
    colour = colour or str(rng.choice(list(COLOURS)))
    shape = shape or str(rng.choice(SHAPES))
    direction = direction or str(rng.choice(list(DIRECTIONS)))
    width, height = size_choices[int(rng.integers(len(size_choices)))]
    fps = float(fps_choices[int(rng.integers(len(fps_choices)))])
    side = min(width, height)
    size = float(rng.uniform(0.24, 0.34))
    # travel 35-50 % of the frame along the motion axis over the clip
    axis = width if DIRECTIONS[direction][0] else height
    travel = float(rng.uniform(0.35, 0.5)) * axis
    speed = travel / CLIP_SECONDS / side
    half = size * side / 2 + 1
    dx, dy = DIRECTIONS[direction]
    # start on the side the shape moves away from, random across the motion
    def start(length: int, step: int) -> float:
        if step > 0:
            lo, hi = half, length - half - travel
        elif step < 0:
            lo, hi = half + travel, length - half
        else:
            lo, hi = half, length - half
        return float(rng.uniform(lo, max(lo, hi))) / length

    return SceneSpec(
        colour=colour, shape=shape, direction=direction, x0=start(width, dx), y0=start(height, dy), size=size,
        speed=speed, fps=fps, width=width, height=height, background=int(rng.integers(5, 45)),
    )


def render_frames(spec: SceneSpec, times: np.ndarray | list[float], width: int | None = None,
                  height: int | None = None) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 frames at time stamps ``times`` (seconds), optionally at another resolution (same
    layout, rescaled). Edges are anti-aliased with 2x2 supersampling, so sub-pixel motion reaches the encoder."""
    width = width or spec.width
    height = height or spec.height
    sx, sy = width / spec.width, height / spec.height
    centres = np.array([spec.centre(float(t)) for t in times], dtype=np.float32)
    cx = (centres[:, 0] * sx)[:, None, None]
    cy = (centres[:, 1] * sy)[:, None, None]
    r = spec.size * min(spec.width, spec.height) / 2 * min(sx, sy)
    ys = ((np.arange(height * 2) + 0.5) / 2).astype(np.float32)
    xs = ((np.arange(width * 2) + 0.5) / 2).astype(np.float32)
    u = xs[None, None, :] - cx
    v = ys[None, :, None] - cy
    if spec.shape == "circle":
        inside = u * u + v * v <= r * r
    elif spec.shape == "square":
        side = r * math.sqrt(math.pi) / 2  # same area as the circle
        inside = (np.abs(u) <= side) & (np.abs(v) <= side)
    else:  # upward-pointing isosceles triangle
        top, bottom = -r, r * 0.9
        frac = (v - top) / (bottom - top)
        inside = (v >= top) & (v <= bottom) & (np.abs(u) <= frac * r * 1.05)
    count = len(centres)
    mask = inside.reshape(count, height, 2, width, 2).mean(axis=(2, 4), dtype=np.float32)[..., None]
    background = np.array([spec.background, spec.background, spec.background + 10], dtype=np.float32)
    colour = np.array(COLOURS[spec.colour], dtype=np.float32)
    frames = background * (1 - mask) + colour * mask
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8)


def render_frame(spec: SceneSpec, t: float, width: int | None = None, height: int | None = None) -> np.ndarray:
    """``[H, W, 3]`` uint8 frame at time ``t`` seconds."""
    return render_frames(spec, [t], width, height)[0]


def encode_scene(spec: SceneSpec, codec: str = "libx264", container_format: str | None = None) -> bytes:
    """The scene rendered at its own frame rate and encoded with PyAV (``codec``: libx264, mpeg4, mpeg2video,
    libvpx-vp9, ...; the container defaults to webm for the VP codecs and mp4 otherwise)."""
    container_format = container_format or CONTAINERS.get(codec, "mp4")
    n = int(round(spec.seconds * spec.fps))
    frames = render_frames(spec, np.arange(n) / spec.fps)
    buffer = io.BytesIO()
    rate = Fraction(spec.fps).limit_denominator(1001)
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        else:
            stream.bit_rate = 2_000_000
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def question_answer(spec: SceneSpec, index: int) -> tuple[str, str]:
    """The ``index``-th question template (cyclic) and its answer for ``spec``."""
    question, answer = QA_TEMPLATES[index % len(QA_TEMPLATES)]
    return question, answer.format(colour=spec.colour, shape=spec.shape, direction=spec.direction)


def balanced_scenes(num: int, seed: int, **scene_kwargs) -> list[SceneSpec]:
    """``num`` scenes cycling through every (colour, shape, direction) combination in a seeded random order."""
    rng = np.random.default_rng(seed)
    combos = [(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS]
    scenes = []
    while len(scenes) < num:
        for i in rng.permutation(len(combos)):
            if len(scenes) == num:
                break
            colour, shape, direction = combos[i]
            scenes.append(random_scene(rng, colour, shape, direction, **scene_kwargs))
    return scenes


def build_dataset(num: int, seed: int, codec: str | tuple[str, ...] = "libx264", container_format: str | None = None,
                  **scene_kwargs):
    """A ``datasets.Dataset`` with columns ``video`` (encoded bytes), ``caption``, ``question``, ``answer``,
    ``colour``, ``shape``, ``direction``, ``codec`` and ``scene`` (the :class:`SceneSpec` as a dict, to re-render
    targets). A tuple of codecs is cycled through row by row."""
    from datasets import Dataset

    codecs = (codec,) if isinstance(codec, str) else tuple(codec)
    if not codecs:
        raise ValueError("codec must name at least one codec")
    keys = ("video", "caption", "question", "answer", "colour", "shape", "direction", "codec", "scene")
    rows = {k: [] for k in keys}
    for i, spec in enumerate(balanced_scenes(num, seed, **scene_kwargs)):
        question, answer = question_answer(spec, i + seed)
        rows["codec"].append(codecs[i % len(codecs)])
        rows["video"].append(encode_scene(spec, codec=rows["codec"][-1], container_format=container_format))
        rows["caption"].append(spec.caption)
        rows["question"].append(question)
        rows["answer"].append(answer)
        rows["colour"].append(spec.colour)
        rows["shape"].append(spec.shape)
        rows["direction"].append(spec.direction)
        rows["scene"].append(asdict(spec))
    return Dataset.from_dict(rows)


__all__ = [
    "CAPTION_TEMPLATE",
    "COLOURS",
    "CONTAINERS",
    "DIRECTIONS",
    "QA_TEMPLATES",
    "SHAPES",
    "SceneSpec",
    "TRAIN_CODECS",
    "TRAIN_FPS",
    "TRAIN_SIZES",
    "balanced_scenes",
    "build_dataset",
    "encode_scene",
    "question_answer",
    "random_scene",
    "render_frame",
    "render_frames",
    "vocabulary",
]
