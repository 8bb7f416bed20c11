"""Registration of every Video-LaVIT class with the transformers/diffusers Auto classes.

Each component adds one function below and lists it in ``register_all``; registration is idempotent
(``exist_ok=True``) so importing the package twice is harmless.
"""


def register_all():
    for register in _REGISTRATIONS:
        register()


_REGISTRATIONS = []


def _register_processing():
    """AutoImageProcessor -> VideoLavitImageProcessor (PIL backend; the torchvision one does not exist).

    AutoVideoProcessor cannot be registered without torchvision (its register raises ImportError), so the video
    processor is loaded by VideoLavitProcessor directly.
    """
    from transformers import AutoImageProcessor

    from .modeling.configuration_video_lavit import VideoLavitConfig
    from .modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
    from .processing.image_processing_video_lavit import VideoLavitImageProcessor

    for config_class in (VideoLavitVisualTokenizerConfig, VideoLavitConfig):
        AutoImageProcessor.register(
            config_class, image_processor_classes={"pil": VideoLavitImageProcessor}, exist_ok=True
        )


_REGISTRATIONS.append(_register_processing)


def _register_visual_tokenizer():
    """AutoConfig / AutoModel -> VideoLavitVisualTokenizerConfig / VideoLavitVisualTokenizer."""
    from transformers import AutoConfig, AutoModel

    from .modeling.configuration_visual_tokenizer import VideoLavitVisualTokenizerConfig
    from .modeling.modeling_visual_tokenizer import VideoLavitVisualTokenizer

    AutoConfig.register(VideoLavitVisualTokenizerConfig.model_type, VideoLavitVisualTokenizerConfig, exist_ok=True)
    AutoModel.register(VideoLavitVisualTokenizerConfig, VideoLavitVisualTokenizer, exist_ok=True)


_REGISTRATIONS.append(_register_visual_tokenizer)


def _register_motion_tokenizer():
    """AutoConfig / AutoModel -> VideoLavitMotionTokenizerConfig / VideoLavitMotionTokenizer."""
    from transformers import AutoConfig, AutoModel

    from .modeling.configuration_motion_tokenizer import VideoLavitMotionTokenizerConfig
    from .modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer

    AutoConfig.register(VideoLavitMotionTokenizerConfig.model_type, VideoLavitMotionTokenizerConfig, exist_ok=True)
    AutoModel.register(VideoLavitMotionTokenizerConfig, VideoLavitMotionTokenizer, exist_ok=True)


_REGISTRATIONS.append(_register_motion_tokenizer)


def _register_video_lavit():
    """AutoConfig / AutoModel / AutoModelForCausalLM / AutoModelForImageTextToText / AutoModelForMultimodalLM ->
    VideoLavitConfig / VideoLavitModel / VideoLavitForConditionalGeneration."""
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoModelForMultimodalLM,
    )

    from .modeling.configuration_video_lavit import VideoLavitConfig
    from .modeling.modeling_video_lavit import VideoLavitForConditionalGeneration, VideoLavitModel

    AutoConfig.register(VideoLavitConfig.model_type, VideoLavitConfig, exist_ok=True)
    AutoModel.register(VideoLavitConfig, VideoLavitModel, exist_ok=True)
    for auto_class in (AutoModelForCausalLM, AutoModelForImageTextToText, AutoModelForMultimodalLM):
        auto_class.register(VideoLavitConfig, VideoLavitForConditionalGeneration, exist_ok=True)


_REGISTRATIONS.append(_register_video_lavit)


def _register_processor():
    """AutoProcessor -> VideoLavitProcessor for the composite model type ``video_lavit``.

    ``AutoProcessor.from_pretrained(folder)`` finds the class through ``processor_class`` in
    ``processor_config.json``, which only needs the class to be registered under some key.
    """
    from transformers import AutoProcessor

    from .modeling.configuration_video_lavit import VideoLavitConfig
    from .processing.processing_video_lavit import VideoLavitProcessor

    AutoProcessor.register(VideoLavitConfig, VideoLavitProcessor, exist_ok=True)


_REGISTRATIONS.append(_register_processor)


def _register_pipelines():
    """`transformers.pipeline("text-to-video")` and `pipeline("video-text-to-text")` (tasks transformers lacks).

    Registered locally only: no checkpoint gets `custom_pipelines`, so loading never needs `trust_remote_code`.
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipelines.pipeline_text_to_video import VideoLavitGenerationModelLoader, VideoLavitTextToVideoPipeline
    from .pipelines.pipeline_video_text_to_text import (
        VideoLavitUnderstandingModelLoader,
        VideoLavitVideoTextToTextPipeline,
    )

    tasks = {
        "text-to-video": (VideoLavitTextToVideoPipeline, VideoLavitGenerationModelLoader),
        "video-text-to-text": (VideoLavitVideoTextToTextPipeline, VideoLavitUnderstandingModelLoader),
    }
    for task, (pipeline_class, loader) in tasks.items():
        # register_pipeline has no exist_ok and warns on every re-registration
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=loader, type="multimodal")


_REGISTRATIONS.append(_register_pipelines)


def _register_diffusion_pipelines():
    """`DiffusionPipeline.from_pretrained(folder)` for our pipeline folders.

    diffusers resolves `model_index.json`'s `_class_name` as an attribute of the `diffusers` module and has no
    registry for outside pipelines (its alternative, `custom_pipeline=` code in the folder, needs
    `trust_remote_code`). Exposing our classes there after `import video_lavit` is the equivalent of the Auto-class
    registrations above; existing diffusers names are never replaced.
    """
    import diffusers

    from .pipelines.pipeline_video_lavit import VideoLavitPipeline
    from .pipelines.pipeline_video_lavit_keyframe import VideoLavitKeyframePipeline
    from .pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

    for pipeline_class in (VideoLavitPipeline, VideoLavitKeyframePipeline, VideoLavitReconstructionPipeline):
        existing = getattr(diffusers, pipeline_class.__name__, None)
        if existing is not None and existing is not pipeline_class:
            raise RuntimeError(f"diffusers already defines {pipeline_class.__name__}; refusing to shadow it")
        setattr(diffusers, pipeline_class.__name__, pipeline_class)


_REGISTRATIONS.append(_register_diffusion_pipelines)
