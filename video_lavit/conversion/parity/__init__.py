"""Parity checks against fixtures recorded from the original implementation.

Every fixture ``<name>.json`` in a fixture folder is dispatched by its name to a check function listed in
``FIXTURE_CHECKS``; every ``released_keys`` file by its stem to one in ``RELEASED_KEY_CHECKS``. A check
returns a list of :class:`~video_lavit.conversion.parity.common.Comparison`; the fixture passes when all do.

Check signatures::

    def check_fixture(fixture: Fixture, media_dir: Path | None) -> list[Comparison]
    def check_released_keys(keys: dict[str, tuple[int, ...]], info: dict) -> list[Comparison]
"""

# fixture name -> "module:function" (module relative to this package)
FIXTURE_CHECKS = {
    "preprocess_image": "preprocess:check_preprocess_image",
    "preprocess_video*_recon": "preprocess:check_preprocess_video_recon",
    "preprocess_video*": "preprocess:check_preprocess_video",
    "visual_tokenizer": "visual_tokenizer:check_visual_tokenizer",
    "visual_tokenizer_decoder": "keyframe_decoder:check_visual_tokenizer_decoder",
    "keyframe_decoder": "keyframe_decoder:check_keyframe_decoder",
    "motion_tokenizer": "motion_tokenizer:check_motion_tokenizer",
    "llm_forward": "llm:check_llm_forward",
    "llm_understanding_generate": "llm:check_llm_understanding_generate",
    "llm_t2v": "llm_generation:check_llm_t2v",
    "llm_t2v_fullvocab": "llm_generation:check_llm_t2v_fullvocab",
    "motion_condition": "video_detokenizer:check_motion_condition",
    "unet3d": "video_detokenizer:check_unet3d",
    "video_detok_sampling": "video_detokenizer:check_video_detok_sampling",
}

# released_keys file stem -> "module:function"
RELEASED_KEY_CHECKS = {
    "visual_tokenizer__eva_vitg_psz14": "visual_tokenizer:check_released_eva",
    "visual_tokenizer__tokenizer_encoder": "visual_tokenizer:check_released_tokenizer_encoder",
    "visual_tokenizer__vit_proj": "visual_tokenizer:check_released_vit_proj",
    "visual_tokenizer__highres_tokenizer_decoder": "keyframe_decoder:check_released_highres_decoder",
    "motion_tokenizer": "motion_tokenizer:check_released_motion_tokenizer",
    "language_model": "llm:check_released_language_model",
    "language_model_sft": "llm:check_released_language_model_sft",
    "video_detokenizer": "video_detokenizer:check_released_video_detokenizer",
}
