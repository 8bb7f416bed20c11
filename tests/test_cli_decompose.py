import json

import numpy as np
import pytest
from PIL import Image

from video_lavit import cli
from video_lavit.processing.visualize import flow_to_color


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from video_lavit.cli_model import CALL_DEFAULTS_FILE
    from video_lavit.testing import build_tiny_video_lavit

    folder = build_tiny_video_lavit(tmp_path_factory.mktemp("demo") / "tiny")
    # the folder's own call defaults (as the miniature ships them) keep the random tiny model fast
    defaults = {"max_new_tokens": [8, 136], "min_new_tokens": [8, 20], "num_inference_steps": 1,
                "keyframe_num_inference_steps": 1}
    (folder / CALL_DEFAULTS_FILE).write_text(json.dumps(defaults))
    return folder


def test_demo_decomposes_understands_and_generates(tmp_path, tiny_model, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--model", str(tiny_model), "--prompt", "a blue square moves up"]) == 0
    summary = json.loads((tmp_path / "decomposition" / "summary.json").read_text())
    assert summary["num_frames"] == 24 and summary["fps"] == 6.0 and summary["num_clips"] == 1
    dx, dy = summary["clips"][0]["mean_motion_px_per_frame"]
    assert dx < 0 and abs(dy) < abs(dx)  # the demo circle moves left
    sheet = Image.open(tmp_path / "decomposition" / "keyframes_motion.png")
    assert sheet.height >= 180
    assert Image.open(tmp_path / "decomposition" / "motion.gif").n_frames == 24
    assert (tmp_path / "generated.mp4").stat().st_size > 0
    assert Image.open(tmp_path / "generated_sheet.png").width > 0
    out = capsys.readouterr().out
    assert "Q: Describe this video." in out and "24 frames (1 clip" in out


def test_call_defaults_file_is_read_as_pipeline_arguments(tmp_path):
    from video_lavit.cli_model import CALL_DEFAULTS_FILE, pipeline_call_defaults

    assert pipeline_call_defaults(tmp_path) == {}
    (tmp_path / CALL_DEFAULTS_FILE).write_text('{"max_new_tokens": [16, 12], "top_k": 5}')
    assert pipeline_call_defaults(tmp_path) == {"max_new_tokens": (16, 12), "top_k": 5}
    (tmp_path / CALL_DEFAULTS_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        pipeline_call_defaults(tmp_path)


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
