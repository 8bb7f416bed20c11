"""Bad or unusual video input: each case gives a correct result or a ValueError that says what is wrong."""

import io

import av
import numpy as np
import pytest
import torch

from video_lavit.processing.synthetic import encode_audio_only, encode_video, moving_square_frames
from video_lavit.processing.video_processing_video_lavit import VideoLavitVideoProcessor


@pytest.fixture(scope="module")
def processor():
    return VideoLavitVideoProcessor()


@pytest.fixture(scope="module")
def frames():
    return moving_square_frames(36, 160, 128, velocity=(3.0, 1.0), square=48)


def test_nonexistent_path(processor, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        processor(str(tmp_path / "missing.mp4"))


def test_empty_file_and_bytes(processor, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        processor(empty)
    with pytest.raises(ValueError, match="empty"):
        processor(b"")


def test_non_video_bytes(processor):
    with pytest.raises(ValueError, match="cannot read"):
        processor(b"this is certainly not a video file " * 50)
    with pytest.raises(ValueError, match="cannot read"):
        processor(io.BytesIO(bytes(range(256)) * 20))


def test_truncated_mp4_without_index(processor, frames):
    data = encode_video(frames, container_format="mp4")
    with pytest.raises(ValueError, match="cannot read"):
        processor(data[: len(data) // 2])


def test_truncated_stream_keeps_decodable_part_and_warns(processor, frames):
    data = encode_video(frames, container_format="matroska")
    with pytest.warns(UserWarning, match="truncated"):
        out = processor(data[: int(len(data) * 0.6)], return_tensors="pt")
    assert out["clips_per_video"].tolist() == [1]
    assert torch.isfinite(out["motion_vectors"]).all()


def test_audio_only_file(processor):
    with pytest.raises(ValueError, match="no video stream"):
        processor(encode_audio_only(0.5))


def test_video_stream_without_frames(processor):
    # a declared video stream with no packets (an audio track keeps the file valid)
    empty = encode_video(
        np.zeros((0, 64, 64, 3), dtype=np.uint8), codec="mpeg4", container_format="matroska", audio_seconds=0.5
    )
    with av.open(io.BytesIO(empty)) as container:
        assert len(container.streams.video) == 1
    with pytest.raises(ValueError, match="no decodable frames"):
        processor(empty)


def test_one_frame_video_gives_one_padded_clip(processor, frames):
    out = processor(encode_video(frames[:1]), return_tensors="pt")
    assert out["keyframe_indices"].tolist() == [0]
    assert out["motion_vectors"].shape == (1, 2, 24, 20, 36)
    assert out["motion_vectors"].abs().max() == 0  # a lone I-frame and padding carry no motion


def test_video_shorter_than_one_clip_is_padded(processor, frames):
    data = processor.extract(encode_video(frames[:15]))
    assert data.frame_types == "IPPPPPPPPPPPIPP"
    assert data.clip_starts == [0]  # no regular start with 24 frames of room: fall back to the first I-frame
    pooled = data.pooled[0]
    assert pooled.shape[0] == 24
    assert pooled[1:12].abs().amax() > 0  # real motion
    assert pooled[15:].abs().max() == 0  # padded frames


def test_pixel_limit(processor, frames):
    with pytest.raises(ValueError, match="exceeds max_pixels=10000"):
        processor(encode_video(frames[:4]), max_pixels=10000)
    with pytest.raises(ValueError, match="exceeds max_pixels"):
        processor(frames[:4], fps=6, max_pixels=10000)


@pytest.mark.parametrize("size", [(150, 100), (161, 123)])
def test_sizes_not_multiple_of_16(processor, size):
    width, height = size
    clip = moving_square_frames(30, width, height, velocity=(3.0, 0.0), square=40)
    data = processor.extract(clip, fps=6)
    assert data.size == (height, width)
    assert data.pooled[0].shape == (24, 2, -(-height // 16), -(-width // 16))
    x_px = data.pooled[0][1:12, 0] * width * processor.motion_std[0] / 10
    assert ((x_px - 3.0).abs() < 1e-3).sum() >= 11


def test_variable_frame_rate_is_resampled_by_time(processor, frames):
    rng = np.random.default_rng(0)
    timestamps = np.cumsum(np.r_[0.0, rng.uniform(0.05, 0.4, len(frames) - 1)])
    data = processor.extract(encode_video(frames, timestamps=list(timestamps), container_format="matroska"))
    # the fps filter places frames on a 6 fps grid by time, duplicating or dropping as needed
    expected = (timestamps[-1] + 1 / 6) * 6
    assert abs(len(data.frame_types) - expected) <= 2
    assert data.clip_starts


def test_rotation_metadata_is_applied(processor):
    """A 90-degree display matrix turns the frames upright before re-encoding, as the ffmpeg CLI does."""
    clip = moving_square_frames(24, 160, 96, velocity=(0.0, 0.0), square=32)
    clip[:, :8, :8] = [255, 0, 0]  # red marker in the top-left corner of the stored frames
    upright = processor.extract(encode_video(clip), fps=None)
    rotated = processor.extract(encode_video(clip, rotation=-90))
    assert upright.keyframes[0].shape == (96, 160, 3)
    assert rotated.keyframes[0].shape == (160, 96, 3)
    assert rotated.size == (160, 96)
    # clockwise display rotation moves the top-left corner to the top-right
    assert rotated.keyframes[0][2, -3, 0] > 200 and rotated.keyframes[0][2, 2, 0] < 200
    off = processor.extract(encode_video(clip, rotation=-90), autorotate=False)
    assert off.keyframes[0].shape == (96, 160, 3)


def test_reconstruction_needs_one_full_regular_clip(processor, frames):
    """The reconstruction path never pads (as the notebook): a too-short video is an error, not a silent clip."""
    short = encode_video(frames[:20])
    with pytest.raises(ValueError, match="no clip of 24 frames"):
        processor(short, mode="reconstruction", reconstruction_fps=6.0, seed=0)
