"""Diffusers pipelines of Video-LaVIT: the end-to-end generation pipeline and its two detokenizer pipelines."""

from .pipeline_video_lavit import VideoLavitImagePipelineOutput, VideoLavitPipeline, VideoLavitPipelineOutput
from .pipeline_video_lavit_keyframe import VideoLavitKeyframePipeline
from .pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline, VideoLavitReconstructionPipelineOutput

__all__ = [
    "VideoLavitImagePipelineOutput",
    "VideoLavitKeyframePipeline",
    "VideoLavitPipeline",
    "VideoLavitPipelineOutput",
    "VideoLavitReconstructionPipeline",
    "VideoLavitReconstructionPipelineOutput",
]
