"""Hugging Face-native Video-LaVIT.

``import video_lavit`` registers every class with the transformers / diffusers Auto machinery, so that
``AutoConfig``, ``AutoModel``, ``AutoProcessor`` and ``pipeline(...)`` resolve the ``video_lavit`` model types.
Each component registers itself in ``video_lavit/registration.py``.
"""

from .hub_export import export_for_hub
import os

from .registration import register_all

__version__ = "0.1.0"

# the miniature Video-LaVIT trained on synthetic videos (`python -m video_lavit.mini.train`), shipped in the package
MINI_MODEL_PATH = os.path.join(os.path.dirname(__file__), "mini", "model")

register_all()
