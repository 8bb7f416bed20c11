import io

import numpy as np
import pytest
import torch

from video_lavit.conversion import verify_parity
from video_lavit.processing.motion_vectors import (
    ReencodeSettings,
    pool_motion_vectors,
    pool_motion_vectors_batch,
    reencode_video,
)
from video_lavit.processing.synthetic import encode_video, moving_square_frames
from video_lavit.processing.video_processing_video_lavit import (
    VideoLavitVideoProcessor,
    regular_clip_starts,
    select_clip_starts,
)

STD = (0.0993703, 0.1130276)


@pytest.fixture(scope="module")
def square_frames():
    return moving_square_frames(48, 320, 240, velocity=(4.0, 2.0))


@pytest.fixture(scope="module")
def square_video(square_frames):
    return encode_video(square_frames, fps=6)


def test_parity_fixtures_pass(fixtures_dir, testdata_dir):
    assert verify_parity.main([str(fixtures_dir), "--media-dir", str(testdata_dir), "--only", "preprocess*"]) == 0


def test_motion_direction_right_and_down(square_video):
    """Content moving +4 px right and +2 px down per frame gives positive x/y displacements of that size."""
    processor = VideoLavitVideoProcessor()
    data = processor.extract(square_video)
    assert data.frame_types == "IPPPPPPPPPPP" * 4
    assert data.clip_starts == [12]
    pooled = data.pooled[0]  # [24, 2, 15, 20], normalised by size and std / 10
    moving = pooled[1:12]
    x_px = moving[:, 0] * 320 * STD[0] / 10
    y_px = moving[:, 1] * 240 * STD[1] / 10
    # the square spans about 4x4 macroblocks per frame; its cells carry exactly the true displacement
    assert ((x_px - 4.0).abs() < 1e-3).sum() >= 11 * 10
    assert ((y_px - 2.0).abs() < 1e-3).sum() >= 11 * 10
    # the opposite displacement is (almost) absent: the sign is right
    assert ((x_px + 4.0).abs() < 1e-3).sum() * 20 < ((x_px - 4.0).abs() < 1e-3).sum()
    assert ((y_px + 2.0).abs() < 1e-3).sum() * 20 < ((y_px - 2.0).abs() < 1e-3).sum()
    # frame 0 (the keyframe) has no motion; frame 12 is the mean of its neighbours
    assert pooled[0].abs().max() == 0
    torch.testing.assert_close(pooled[12], (pooled[11] + pooled[13]) / 2)


def test_outputs_follow_the_contract(square_video, square_frames):
    processor = VideoLavitVideoProcessor()
    out = processor([square_video, square_frames], fps=[None, 6], return_tensors="pt")
    assert out["pixel_values"].shape == (2, 3, 224, 224)
    assert out["motion_vectors"].shape == (2, 2, 24, 20, 36)
    assert out["motion_vectors"].dtype == torch.float32
    assert out["clips_per_video"].tolist() == [1, 1]
    assert out["keyframe_indices"].tolist() == [12, 12]
    torch.testing.assert_close(out["keyframe_timestamps"], torch.tensor([2.0, 2.0]))
    # the keyframe row is the image processor's eval transform of the re-encoded I-frame
    from video_lavit.processing.image_processing_video_lavit import VideoLavitImageProcessor

    keyframe = processor.extract(square_video).keyframes[0]
    expected = VideoLavitImageProcessor()(keyframe, return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(out["pixel_values"][0], expected)


def test_input_kinds_agree(square_video, square_frames, tmp_path):
    processor = VideoLavitVideoProcessor()
    path = tmp_path / "square.mp4"
    path.write_bytes(square_video)
    from_path = processor(str(path), return_tensors="pt")
    for other in (path, square_video, io.BytesIO(square_video)):
        out = processor(other, return_tensors="pt")
        torch.testing.assert_close(out["motion_vectors"], from_path["motion_vectors"], rtol=0, atol=0)
        torch.testing.assert_close(out["pixel_values"], from_path["pixel_values"], rtol=0, atol=0)
    from PIL import Image

    as_array = processor(square_frames, fps=6, return_tensors="pt")
    as_pil = processor([Image.fromarray(f) for f in square_frames], fps=6, return_tensors="pt")
    as_tensor = processor(torch.from_numpy(square_frames), fps=6, return_tensors="pt")
    for out in (as_pil, as_tensor):
        torch.testing.assert_close(out["motion_vectors"], as_array["motion_vectors"], rtol=0, atol=0)


def test_fps_resampling_of_decoded_frames(square_frames):
    """30 fps frames are resampled to 6 fps: 48 frames at 30 fps = 1.6 s -> 10 frames, one padded clip."""
    processor = VideoLavitVideoProcessor()
    data = processor.extract(square_frames, fps=30)
    assert len(data.frame_types) == 10
    assert data.clip_starts == [0]


def test_selection_rules():
    regular = "IPPPPPPPPPPP" * 7  # 84 frames
    assert select_clip_starts(regular, 24, 12, 16) == [12, 36, 60]
    # long video: 40 regular GOPs -> every second start from the second, spread to max_clips
    long = "IPPPPPPPPPPP" * 40
    starts = select_clip_starts(long, 24, 12, 4)
    candidates = list(range(12, 480 - 24 + 1, 24))
    assert starts == [candidates[i] for i in np.linspace(0, len(candidates) - 1, 4).astype(int)]
    # fewer than two regular starts -> all I-frames, the first when there are at most two
    assert select_clip_starts("IPPPPPPPPPPPIPPP", 24, 12, 16) == [0]
    assert select_clip_starts("I", 24, 12, 16) == [0]
    # a scene-cut I-frame breaks the regular GOP
    cut = "IPPPPPPPPPPPIPPPPPIPPPPPPPPPPPIPPPPPPPPPPPIPPPPPPPPPPP"
    assert regular_clip_starts(cut, 24, 12) == [0, 18, 30]
    with pytest.raises(ValueError, match="no I-frame"):
        select_clip_starts("PPPP", 24, 12, 16)


def test_pooling_matches_dense_map():
    """The direct pooling equals writing a dense -inf map (last write wins) and max-pooling it."""
    rng = np.random.default_rng(0)
    height, width = 50, 70  # not multiples of 16: partial edge cells and clipped positions
    dtype = [("source", "i4"), ("w", "u1"), ("h", "u1"), ("src_x", "i2"), ("src_y", "i2"), ("dst_x", "i2"),
             ("dst_y", "i2"), ("flags", "u8"), ("motion_x", "i4"), ("motion_y", "i4"), ("motion_scale", "u2")]
    vectors = np.zeros(60, dtype=dtype)
    vectors["source"] = rng.choice([-1, 1], 60)
    vectors["dst_x"] = rng.integers(-5, width + 10, 60)
    vectors["dst_y"] = rng.integers(-5, height + 10, 60)
    vectors["dst_x"][:5] = width + 3  # collisions at the clipped corner
    vectors["dst_y"][:5] = height + 3
    vectors["motion_x"] = rng.integers(-20, 20, 60)
    vectors["motion_y"] = rng.integers(-20, 20, 60)
    vectors["motion_scale"] = rng.choice([2, 4], 60)
    dense = np.full((2, height, width), -np.inf)
    for v in vectors:
        x, y = min(max(int(v["dst_x"]), 0), width - 1), min(max(int(v["dst_y"]), 0), height - 1)
        dense[:, y, x] = [v["source"] * v["motion_x"] / v["motion_scale"], v["source"] * v["motion_y"] / v["motion_scale"]]
    padded = torch.full((2, 64, 80), -float("inf"), dtype=torch.float64)
    padded[:, :height, :width] = torch.from_numpy(dense)
    expected = torch.nn.functional.max_pool2d(padded[None], 16)[0].float()
    ours = torch.from_numpy(pool_motion_vectors(vectors, height, width))
    assert torch.equal(ours, expected)
    # the batched path (used while streaming) gives the same grids, with and without collisions
    clean = vectors[5:][np.unique((vectors["dst_y"][5:].clip(0, height - 1) // 16) * 5
                                  + vectors["dst_x"][5:].clip(0, width - 1) // 16, return_index=True)[1]]
    shifted = clean.copy()
    shifted["motion_x"] += 3  # a second clean frame with other values: each frame lands in its own grid
    batch = pool_motion_vectors_batch([vectors, None, clean, vectors[:0], shifted[::-1]], height, width)
    assert torch.equal(torch.from_numpy(batch[0]), expected)
    assert batch[1] is None
    np.testing.assert_array_equal(batch[2], pool_motion_vectors(clean, height, width))
    assert np.isneginf(batch[3]).all() and batch[3].shape == (2, 4, 5)
    np.testing.assert_array_equal(batch[4], pool_motion_vectors(shifted, height, width))
    assert not np.array_equal(batch[4], batch[2])


def test_motion_vector_tables_are_detached_copies(square_video):
    """Tables equal PyAV's own conversion but own their memory, so a table waiting for pooling does not keep
    its decoded frame alive."""
    seen = 0
    for item in reencode_video(square_video, ReencodeSettings()):
        side = item.frame.side_data.get("MOTION_VECTORS")
        if side is None:
            assert item.motion_vectors is None
            continue
        reference = side.to_ndarray()
        assert item.motion_vectors.dtype == reference.dtype
        np.testing.assert_array_equal(item.motion_vectors, reference)
        assert not np.shares_memory(item.motion_vectors, reference)
        seen += 1
    assert seen > 0


def test_reconstruction_mode(square_video):
    processor = VideoLavitVideoProcessor(reconstruction_fps=6.0, reconstruction_size={"height": 64, "width": 96})
    out = processor(square_video, mode="reconstruction", clip_start=12, return_tensors="pt")
    assert out["motion_vectors"].shape == (1, 2, 24, 8, 12)
    assert out["pixel_values"].shape == (1, 3, 64, 96)
    assert out["pixel_values"].min() >= -1 and out["pixel_values"].max() <= 1
    # plain std: 10x smaller values than the understanding path on the same clip
    understanding = processor(square_video, return_tensors="pt")
    assert out["motion_vectors"].abs().max() < understanding["motion_vectors"].abs().max() / 5
    seeded = [processor.extract(square_video, mode="reconstruction", seed=s).clip_starts for s in range(6)]
    assert all(s[0] in (0, 12, 24) for s in seeded)
    assert seeded == [processor.extract(square_video, mode="reconstruction", seed=s).clip_starts for s in range(6)]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert processor.extract(square_video, mode="reconstruction", generator=g1).clip_starts == processor.extract(
        square_video, mode="reconstruction", generator=g2
    ).clip_starts
    with pytest.raises(ValueError, match="not a valid clip start"):
        processor(square_video, mode="reconstruction", clip_start=5)


def test_antialias_option_changes_downsampled_motion(testdata_dir):
    processor = VideoLavitVideoProcessor(max_clips=1, motion_size={"height": 5, "width": 9})
    plain = processor(str(testdata_dir / "video7013.mp4"), return_tensors="pt")["motion_vectors"]
    smooth = processor(str(testdata_dir / "video7013.mp4"), motion_antialias=True, return_tensors="pt")["motion_vectors"]
    assert plain.shape == smooth.shape == (1, 2, 24, 5, 9)
    assert (plain - smooth).abs().max() > 1e-3


def test_save_load_round_trip(tmp_path, square_video):
    processor = VideoLavitVideoProcessor(max_clips=3, encoder_threads=4, motion_antialias=True)
    processor.save_pretrained(tmp_path)
    loaded = VideoLavitVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert (loaded.max_clips, loaded.encoder_threads, loaded.motion_antialias) == (3, 4, True)
    a = processor(square_video, return_tensors="pt")
    b = loaded(square_video, return_tensors="pt")
    torch.testing.assert_close(a["motion_vectors"], b["motion_vectors"], rtol=0, atol=0)


def test_encoder_threads_are_pinned(square_video):
    """The slice-thread count is part of the recipe: it is applied (and changes the bitstream)."""
    tables = {}
    for threads in (1, 16):
        settings = ReencodeSettings(encoder_threads=threads)
        tables[threads] = [f.packet for f in reencode_video(square_video, settings) if f.packet]
    assert len(tables[1]) == len(tables[16])
    assert tables[1] != tables[16]


def test_rejects_bad_arguments(square_video):
    processor = VideoLavitVideoProcessor()
    with pytest.raises(TypeError, match="unexpected keyword"):
        processor(square_video, max_clip=3)
    with pytest.raises(ValueError, match="mode"):
        processor(square_video, mode="generation")
    with pytest.raises(ValueError, match="fps"):
        processor(moving_square_frames(4), return_tensors="pt")
    with pytest.raises(ValueError, match="uint8"):
        processor(moving_square_frames(4).astype(np.float32), fps=6)
    with pytest.raises(TypeError, match="expected a path"):
        processor([square_video, 3])


def test_memory_does_not_grow_with_video_length(tmp_path):
    """Streaming: a 4x longer video keeps only a few bytes per extra frame (no decoded frames are held)."""
    import tracemalloc

    processor = VideoLavitVideoProcessor(max_clips=2)
    peaks = {}
    for frames in (180, 720):
        path = tmp_path / f"long{frames}.mp4"
        path.write_bytes(encode_video(moving_square_frames(frames, 160, 128, square=32), fps=6))
        tracemalloc.start()
        data = processor.extract(path)
        peaks[frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(data.frame_types) == frames and len(data.clip_starts) == 2
    extra_frames = 720 - 180
    rgb_bytes_per_frame = 160 * 128 * 3
    # per frame only the pooled grid (8 B per macroblock + array header) and, every 12th frame, the I-frame packet
    # stay; holding the decoded RGB frames would add extra_frames * 61 KB = 33 MB
    assert peaks[720] - peaks[180] < extra_frames * 2048 < extra_frames * rgb_bytes_per_frame / 20


def test_decoded_frames_with_read_side_data_are_collected(square_video, monkeypatch):
    """Frames whose side data was read form reference cycles that only a full collection frees; the byte budget
    triggers one, so decoded frames cannot pile up (without it ~50 frames were alive by the end of this video)."""
    import gc

    import av

    from video_lavit.processing import motion_vectors

    def live_frames():
        return sum(1 for o in gc.get_objects() if isinstance(o, av.VideoFrame) and o.format is not None)

    frame_bytes = 320 * 240 * 3 // 2
    monkeypatch.setattr(motion_vectors, "GARBAGE_FRAME_BYTES", 4 * frame_bytes)  # a full collection every 5 frames
    gc.collect()
    counts = [live_frames() for i, _ in enumerate(reencode_video(square_video, ReencodeSettings())) if i % 8 == 7]
    assert len(counts) >= 5 and max(counts) <= 8, counts
