import json

import numpy as np
import pytest
from PIL import Image

from video_lavit import cli
from video_lavit.processing.visualize import flow_to_color


def test_demo_writes_pictures_and_summary(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_frames"] == 96 and summary["fps"] == 6.0
    assert [c["keyframe_index"] for c in summary["clips"]] == [12, 36, 60]
    assert [c["keyframe_time_s"] for c in summary["clips"]] == [2.0, 6.0, 10.0]
    for clip in summary["clips"]:  # the demo square drifts right and down
        dx, dy = clip["mean_motion_px_per_frame"]
        assert dx > 0 and dy > 0 and dx > dy
    sheet = Image.open(tmp_path / "keyframes_motion.png")
    assert sheet.height >= 3 * 180
    gif = Image.open(tmp_path / "motion.gif")
    assert gif.n_frames == 3 * 24
    assert "3 clips" in capsys.readouterr().out


def test_decompose_real_video_respects_max_clips(tmp_path, testdata_dir):
    out = tmp_path / "out"
    assert cli.main(["decompose", "--video", str(testdata_dir / "video7013.mp4"), "--out", str(out), "--max-clips", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_clips"] == 1 and summary["frame_size"] == [240, 320]
    assert summary["frame_types"].startswith("IPPPPPPPPPPPI")


def test_decompose_reports_bad_input(tmp_path, capsys):
    assert cli.main(["decompose", "--video", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])


def test_subcommands_are_extensible():
    assert set(cli.SUBCOMMANDS) >= {"decompose", "demo"}
    parser = cli.build_parser()
    args = parser.parse_args(["demo", "--out", "x"])
    assert args.handler is cli._run_demo


def test_flow_colours():
    flow = np.zeros((2, 1, 4))
    flow[:, 0, 0] = [1, 0]  # right -> red
    flow[:, 0, 1] = [-1, 0]  # left -> cyan
    flow[:, 0, 2] = [0, 0]  # still -> white
    flow[:, 0, 3] = [0, 0.5]  # half speed down -> pale
    rgb = flow_to_color(flow, max_magnitude=1.0)[0]
    assert rgb[0].tolist() == [255, 0, 0]
    assert rgb[1].tolist() == [0, 255, 255]
    assert rgb[2].tolist() == [255, 255, 255]
    assert rgb[3].min() == 128 or rgb[3].min() == 127
    with pytest.raises(ValueError, match=r"\[2, H, W\]"):
        flow_to_color(np.zeros((3, 2, 2)))
