"""MPEG-4 Part 2 re-encoding and motion-vector extraction with PyAV only (no ffmpeg CLI, OpenCV or mv-extractor).

The original pipeline shells out to ``ffmpeg -filter:v fps=F -b:v 8000k -c:v mpeg4 -f rawvideo`` and reads the
result back with motion-vector export. Here the same libav* stages run in one streaming loop, so memory does not
grow with the frame size times the video length:

    source decoder -> libavfilter (autorotate, fps, yuv420p) -> mpeg4 encoder -> mpeg4 decoder (+export_mvs)

With the encoder's slice-thread count pinned, the bitstream equals the CLI's (apart from the encoder version
string) and the decoded motion vectors and pixels are identical.

Per decoded frame only the frame type, a motion grid pooled to one cell per 16x16 macroblock and (for I-frames)
the compressed packet are kept by callers; the RGB keyframes are decoded again from those packets on demand.
"""

from __future__ import annotations

import gc
import io
import math
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Iterator

import av
import numpy as np
from av.filter import Graph

PICTURE_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}
MACROBLOCK = 16
# Reading a frame's side data makes PyAV's frame and side-data container reference each other, and measured,
# young-generation collections do not free that cycle even once nothing else refers to it (the frame object
# apparently ages before it is filled): only a full collection frees it, which is rare once torch is imported. A full collection after this many bytes of decoded frames caps
# the memory they hold (never reached at 320x240 below ~4500 frames; every ~170 frames at 1080p).
GARBAGE_FRAME_BYTES = 512 * 2**20
# FFmpeg's AVMotionVector, the layout PyAV's MotionVectors.to_ndarray uses (built once: to_ndarray builds the
# dtype anew on every call)
MOTION_VECTOR_DTYPE = np.dtype(
    [
        ("source", "int32"), ("w", "uint8"), ("h", "uint8"), ("src_x", "int16"), ("src_y", "int16"),
        ("dst_x", "int16"), ("dst_y", "int16"), ("flags", "uint64"), ("motion_x", "int32"), ("motion_y", "int32"),
        ("motion_scale", "uint16"),
    ],
    align=True,
)


@dataclass
class ReencodeSettings:
    """Settings of the in-memory re-encode (the original's ffmpeg command line)."""

    fps: float = 6.0
    bit_rate: int = 8_000_000
    # the mpeg4 encoder only slice-threads and each slice border changes MV prediction, so the count is pinned
    encoder_threads: int = 16
    gop_size: int = 12
    max_pixels: int | None = 3840 * 2160
    autorotate: bool = True


@dataclass
class ReencodedFrame:
    """One frame of the re-encoded stream.

    index: position in the fps-resampled stream; frame_type: ``"I"``/``"P"``/...; motion_vectors: FFmpeg
    ``AVMotionVector`` structured array (``None`` when the frame has none, e.g. I-frames); frame: the decoded
    ``av.VideoFrame`` (yuv420p, valid until the next frame is produced); packet: the encoded bytes, only for
    intra frames (they decode on their own, see :func:`decode_intra_packet`).
    """

    index: int
    frame_type: str
    motion_vectors: np.ndarray | None
    frame: av.VideoFrame
    packet: bytes | None


def describe_source(video) -> str:
    if isinstance(video, (str, os.PathLike)):
        return str(video)
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video)} bytes>"
    return f"<{type(video).__name__}>"


def open_video(video: str | os.PathLike | bytes | BinaryIO):
    """Open a file path, raw bytes or a binary file-like object as a PyAV input container with a video stream.

    Raises ``ValueError`` naming the problem (missing/empty file, undecodable data, no video stream).
    """
    name = describe_source(video)
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if not path.is_file():
            raise ValueError(f"video file not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"video file is empty (0 bytes): {path}")
        source = str(path)
    elif isinstance(video, (bytes, bytearray, memoryview)):
        if len(video) == 0:
            raise ValueError("video bytes are empty (0 bytes)")
        source = io.BytesIO(bytes(video))
    elif hasattr(video, "read"):
        source = video
    else:
        raise TypeError(
            "expected a video as a path (str/Path), bytes, a binary file-like object or decoded frames, "
            f"got {type(video).__name__}"
        )
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {name} as a video: {error}") from error
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        container.close()
        raise ValueError(f"{name} has no video stream (streams found: {kinds})")
    return container


def _rotation_filters(rotation: float) -> list[tuple[str, str]]:
    """libavfilter steps that display a frame upright, as the ffmpeg CLI's autorotate does (multiples of 90)."""
    # PyAV reports the display matrix angle counter-clockwise; the CLI turns it into a clockwise correction
    theta = (-rotation) % 360
    if abs(theta - 90) < 1:
        return [("transpose", "clock")]
    if abs(theta - 180) < 1:
        return [("hflip", ""), ("vflip", "")]
    if abs(theta - 270) < 1:
        return [("transpose", "cclock")]
    if abs(theta) < 1 or abs(theta - 360) < 1:
        return []
    raise ValueError(f"unsupported display rotation {rotation} degrees (only multiples of 90 are handled)")


class _Reencoder:
    """fps filter + mpeg4 encoder + mv-exporting decoder, fed one source frame at a time."""

    def __init__(self, settings: ReencodeSettings, name: str):
        self.settings = settings
        self.name = name
        self.graph = None
        self.source_size = None
        self.encoder = None
        self.decoder = None
        self.count = 0
        self.intra_packets: dict[int, bytes] = {}
        self.uncollected_bytes = 0
        self.fps = Fraction(settings.fps).limit_denominator(1001)

    def _build(self, frame: av.VideoFrame):
        width, height = frame.width, frame.height
        limit = self.settings.max_pixels
        if limit is not None and width * height > limit:
            raise ValueError(
                f"{self.name}: frame size {width}x{height} = {width * height} pixels exceeds max_pixels={limit}"
            )
        if width < 2 or height < 2:
            raise ValueError(f"{self.name}: frame size {width}x{height} is too small to encode (need >= 2x2)")
        graph = Graph()
        last = graph.add_buffer(
            width=width, height=height, format=frame.format.name, time_base=frame.time_base,
        )
        # the display matrix is read once: it is a stream property repeated on every frame
        steps = _rotation_filters(float(frame.rotation or 0.0)) if self.settings.autorotate else []
        steps += [("fps", str(self.fps)), ("format", "yuv420p")]
        for name, args in steps:
            node = graph.add(name, args) if args else graph.add(name)
            last.link_to(node)
            last = node
        sink = graph.add("buffersink")
        last.link_to(sink)
        graph.configure()
        self.graph = graph
        self.source_size = (width, height, frame.format.name)

    def _open_codecs(self, frame: av.VideoFrame):
        encoder = av.CodecContext.create("mpeg4", "w")
        encoder.width, encoder.height = frame.width, frame.height
        encoder.pix_fmt = "yuv420p"
        encoder.bit_rate = self.settings.bit_rate
        encoder.time_base = 1 / self.fps
        encoder.framerate = self.fps
        encoder.gop_size = self.settings.gop_size
        encoder.thread_type = "SLICE"
        encoder.thread_count = self.settings.encoder_threads
        try:
            encoder.open()
        except av.FFmpegError as error:
            raise ValueError(
                f"{self.name}: the mpeg4 encoder rejected {frame.width}x{frame.height} at {self.fps} fps: {error}"
            ) from error
        decoder = av.CodecContext.create("mpeg4", "r")
        decoder.options = {"flags2": "+export_mvs"}
        decoder.thread_count = 1
        self.encoder, self.decoder = encoder, decoder
        self.time_base = encoder.time_base  # cached: each property read builds a new Fraction

    def push(self, frame: av.VideoFrame | None) -> Iterator[ReencodedFrame]:
        if frame is not None:
            if self.graph is None:
                self._build(frame)
            elif (frame.width, frame.height, frame.format.name) != self.source_size:
                raise ValueError(
                    f"{self.name}: frame size/format changed mid-stream from {self.source_size} to "
                    f"{(frame.width, frame.height, frame.format.name)}"
                )
        elif self.graph is None:
            return
        self.graph.push(frame)
        while True:
            try:
                filtered = self.graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            yield from self._encode(filtered)
        if frame is None:
            yield from self._encode(None)

    def _encode(self, frame: av.VideoFrame | None) -> Iterator[ReencodedFrame]:
        if frame is not None:
            if self.encoder is None:
                self._open_codecs(frame)
            # the CLI numbers output frames consecutively; the encoder needs pts + time_base on every frame
            frame.pts = self.count
            frame.time_base = self.time_base
            self.count += 1
        elif self.encoder is None:
            return
        for packet in self.encoder.encode(frame):
            if packet.is_keyframe:
                self.intra_packets[packet.pts] = bytes(packet)
            yield from self._decode(packet)
        if frame is None:
            yield from self._decode(None)

    def _decode(self, packet) -> Iterator[ReencodedFrame]:
        for decoded in self.decoder.decode(packet):
            index = decoded.pts
            side = decoded.side_data.get("MOTION_VECTORS")
            # a copy, not a view: a view would keep the whole decoded frame alive while the table waits for pooling
            vectors = np.frombuffer(bytes(side), dtype=MOTION_VECTOR_DTYPE) if side is not None else None
            frame_type = PICTURE_TYPES.get(int(decoded.pict_type), "?")
            self.uncollected_bytes += decoded.width * decoded.height * 3 // 2
            if self.uncollected_bytes > GARBAGE_FRAME_BYTES:
                gc.collect()
                self.uncollected_bytes = 0
            yield ReencodedFrame(index, frame_type, vectors, decoded, self.intra_packets.pop(index, None))


def _source_frames(container, name: str) -> Iterator[av.VideoFrame]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    time_base = stream.time_base
    # the CLI shifts input timestamps so the file starts at 0; the fps filter's rounding depends on it
    offset = 0
    if container.start_time is not None and stream.time_base:
        offset = int(round(container.start_time * stream.time_base.denominator / (1_000_000 * stream.time_base.numerator)))
    last_pts = None
    step = None
    rate = stream.average_rate or stream.guessed_rate
    if rate and stream.time_base:
        step = max(1, int(round(1 / (rate * stream.time_base))))
    for frame in container.decode(stream):
        pts = frame.pts
        if pts is None:
            if last_pts is None:
                pts = 0
            elif step is not None:
                pts = last_pts + step
            else:
                raise ValueError(f"{name}: frames carry no timestamps and the stream has no frame rate")
        else:
            pts = pts - offset
        if last_pts is not None and pts <= last_pts:
            # duplicated/non-monotonic timestamps: the fps filter would drop or reorder; keep them increasing
            pts = last_pts + 1
        last_pts = pts
        frame.pts = pts
        frame.time_base = time_base
        yield frame


def _array_frames(frames, fps: float, name: str) -> Iterator[av.VideoFrame]:
    if fps is None or not (fps > 0) or not math.isfinite(fps):
        raise ValueError(f"{name}: decoded frames need a positive frame rate `fps`, got {fps!r}")
    time_base = 1 / Fraction(fps).limit_denominator(1001)
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = index
        frame.time_base = time_base
        # without a duration the fps filter ends the stream at the last frame's start and drops that frame
        frame.duration = 1
        yield frame


def reencode_video(
    video, settings: ReencodeSettings, frames_fps: float | None = None, progress=None
) -> Iterator[ReencodedFrame]:
    """Stream the re-encoded frames of ``video`` (path, bytes, file object, or ``[T, H, W, 3]`` uint8 frames with
    ``frames_fps``). ``progress`` is an optional tqdm-like object updated once per source frame.

    Raises ``ValueError`` for unreadable input, frames over ``settings.max_pixels`` and videos without frames.
    """
    name = describe_source(video) if not isinstance(video, (np.ndarray, list, tuple)) else "<decoded frames>"
    reencoder = _Reencoder(settings, name)
    container = None
    declared_seconds = None
    produced = 0
    try:
        if isinstance(video, (np.ndarray, list, tuple)):
            source = _array_frames(video, frames_fps, name)
        else:
            container = open_video(video)
            declared_seconds = container.duration / 1_000_000 if container.duration else None
            if progress is not None and getattr(progress, "total", None) is None:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                estimate = stream.frames or (int(declared_seconds * rate) if declared_seconds and rate else None)
                if estimate:
                    progress.total = estimate
                    progress.refresh()
            source = _source_frames(container, name)
        try:
            for frame in source:
                for item in reencoder.push(frame):
                    produced += 1
                    yield item
                if progress is not None:
                    progress.update(1)
            for item in reencoder.push(None):
                produced += 1
                yield item
        except av.FFmpegError as error:
            raise ValueError(f"{name}: decoding failed after {reencoder.count} frames: {error}") from error
    finally:
        if container is not None:
            container.close()
    if produced == 0:
        raise ValueError(f"{name}: the video stream contains no decodable frames")
    if declared_seconds and reencoder.count < 0.9 * declared_seconds * float(reencoder.fps) - 1:
        warnings.warn(
            f"{name}: decoded {reencoder.count / float(reencoder.fps):.2f} s of a stream that declares "
            f"{declared_seconds:.2f} s; the file may be truncated or damaged",
            stacklevel=2,
        )


def decode_intra_packet(packet: bytes) -> av.VideoFrame:
    """Decode one intra-coded mpeg4 packet of the re-encode on its own (the VOL header is repeated in it)."""
    decoder = av.CodecContext.create("mpeg4", "r")
    decoder.thread_count = 1  # one frame: worker threads would only add start-up cost
    frames = list(decoder.decode(av.Packet(packet))) + list(decoder.decode(None))
    if len(frames) != 1:
        raise ValueError(f"an intra packet decoded to {len(frames)} frames, expected 1")
    return frames[0]


def _displacements_and_cells(vectors: np.ndarray, height: int, width: int, grid_w: int):
    """Per vector: displacement ``dx``, ``dy`` in pixels (float64), destination pixel ``px``, ``py`` clamped into
    the frame (int32) and its macroblock cell (row-major on a ``grid_w``-wide grid)."""
    # int32 products and a true division to float64, as the original computes source * motion / scale
    source, scale = vectors["source"], vectors["motion_scale"]
    dx = source * vectors["motion_x"] / scale
    dy = source * vectors["motion_y"] / scale
    px = vectors["dst_x"].astype(np.int32)
    py = vectors["dst_y"].astype(np.int32)
    # np.clip's Python wrapper costs more than the arithmetic at a few hundred vectors per frame
    np.minimum(np.maximum(px, 0, out=px), width - 1, out=px)
    np.minimum(np.maximum(py, 0, out=py), height - 1, out=py)
    cell = (py // MACROBLOCK) * grid_w + px // MACROBLOCK
    return dx, dy, px, py, cell


def pool_motion_vectors(vectors: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """Max-pool a frame's motion vectors onto its 16x16 macroblock grid without building the dense map.

    Equivalent to writing each displacement ``source * motion / motion_scale`` (pixels) at its block centre
    clipped to the frame (last write wins at equal positions) in a ``-inf``-filled ``[2, height, width]`` map,
    padding to multiples of 16 and taking the per-channel max over each 16x16 cell.

    Returns float32 ``[2, ceil(height/16), ceil(width/16)]`` (x, y); ``-inf`` where no vector falls in a cell.
    """
    grid_h, grid_w = -(-height // MACROBLOCK), -(-width // MACROBLOCK)
    # float32 holds every displacement exactly: mpeg4 vectors are multiples of 1/2 (or 1/4 with qpel) pixel
    grid = np.full((2, grid_h * grid_w), -np.inf, dtype=np.float32)
    if vectors is None or len(vectors) == 0:
        return grid.reshape(2, grid_h, grid_w)
    dx, dy, px, py, cell = _displacements_and_cells(vectors, height, width, grid_w)
    if np.bincount(cell, minlength=grid.shape[1]).max() <= 1:
        # the usual case (one 16x16 vector per macroblock): one value per cell, nothing to resolve
        grid[0, cell] = dx
        grid[1, cell] = dy
        return grid.reshape(2, grid_h, grid_w)
    pixel = py.astype(np.int64) * width + px
    if np.unique(pixel).size != pixel.size:
        # the last vector written to a pixel replaces earlier ones (numpy fancy assignment order)
        _, first_in_reversed = np.unique(pixel[::-1], return_index=True)
        keep = np.sort(pixel.size - 1 - first_in_reversed)
        cell, dx, dy = cell[keep], dx[keep], dy[keep]
    np.maximum.at(grid[0], cell, dx.astype(np.float32))
    np.maximum.at(grid[1], cell, dy.astype(np.float32))
    return grid.reshape(2, grid_h, grid_w)


def pool_motion_vectors_batch(batch: list, height: int, width: int) -> list:
    """:func:`pool_motion_vectors` for several frames at once (``None`` entries stay ``None``).

    One set of array operations for the whole batch instead of one per frame: the per-call overhead of numpy
    dominates at a few hundred vectors per frame. Frames with several vectors in one macroblock go through the
    single-frame path, which resolves collisions.
    """
    grid_h, grid_w = -(-height // MACROBLOCK), -(-width // MACROBLOCK)
    cells = grid_h * grid_w
    present = [i for i, v in enumerate(batch) if v is not None and len(v)]
    # frames without vectors: None stays None, an empty table becomes an all-empty grid as in the single path
    out: list = [None if v is None or len(v) else pool_motion_vectors(v, height, width) for v in batch]
    if not present:
        return out
    tables = [batch[i] for i in present]
    if all(t.dtype == tables[0].dtype for t in tables):
        # joining raw bytes skips numpy's per-field dtype promotion, which costs more than the pooling itself
        vectors = np.concatenate([np.ascontiguousarray(t).view(np.uint8) for t in tables]).view(tables[0].dtype)
    else:
        vectors = np.concatenate(tables)
    owner = np.repeat(np.arange(len(present)), [len(t) for t in tables])
    dx, dy, _, _, cell = _displacements_and_cells(vectors, height, width, grid_w)
    grids = np.full((len(present), 2, cells), -np.inf, dtype=np.float32)
    counts = np.bincount(owner * cells + cell, minlength=len(present) * cells).reshape(len(present), cells)
    crowded = counts.max(axis=1) > 1
    # flat positions in [frame, channel, cell] order: one 1-D scatter per channel instead of 3-D fancy indexing
    flat = owner * (2 * cells) + cell
    planes = grids.reshape(-1)
    planes[flat] = dx
    planes[flat + cells] = dy
    for position, frame in enumerate(present):
        out[frame] = (
            pool_motion_vectors(batch[frame], height, width) if crowded[position]
            else grids[position].reshape(2, grid_h, grid_w)
        )
    return out


def motion_vector_table(vectors: np.ndarray | None) -> np.ndarray:
    """The mv-extractor layout: int32 ``[N, 10]`` columns source, w, h, src_x, src_y, dst_x, dst_y, motion_x,
    motion_y, motion_scale."""
    fields = ["source", "w", "h", "src_x", "src_y", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale"]
    if vectors is None:
        return np.zeros((0, 10), dtype=np.int32)
    return np.stack([vectors[f].astype(np.int32) for f in fields], axis=1)


__all__ = [
    "ReencodeSettings",
    "ReencodedFrame",
    "decode_intra_packet",
    "motion_vector_table",
    "open_video",
    "pool_motion_vectors",
    "pool_motion_vectors_batch",
    "reencode_video",
]
