"""`DiffusionPipeline.from_pretrained` resolves our pipeline folders after `import video_lavit`."""

import diffusers
import pytest
import torch
from diffusers import DiffusionPipeline

import video_lavit  # noqa: F401  (registers the pipelines)
from video_lavit.pipelines.pipeline_video_lavit import VideoLavitPipeline
from video_lavit.pipelines.pipeline_video_lavit_keyframe import VideoLavitKeyframePipeline
from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline
from video_lavit.registration import _register_diffusion_pipelines
from video_lavit.testing import build_tiny_video_lavit_pipeline


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_video_lavit_pipeline(seed=0)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("part", ["full", "keyframe", "video"])
def test_generic_loader_returns_our_pipeline_with_the_saved_weights(tiny, tmp_path, part):
    pipe = {"full": tiny, "keyframe": tiny.keyframe_pipeline, "video": tiny.video_pipeline}[part]
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    expected = {"full": VideoLavitPipeline, "keyframe": VideoLavitKeyframePipeline,
                "video": VideoLavitReconstructionPipeline}[part]
    assert type(loaded) is expected
    modules = {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}
    assert modules
    for name, module in modules.items():
        assert _same_weights(module, getattr(loaded, name)), name


def test_registration_never_shadows_a_diffusers_name(monkeypatch):
    monkeypatch.setattr(diffusers, "VideoLavitPipeline", object, raising=False)
    with pytest.raises(RuntimeError, match="refusing to shadow"):
        _register_diffusion_pipelines()
