"""Hugging Face-native Video-LaVIT.

``import video_lavit`` registers every class with the transformers / diffusers Auto machinery, so that
``AutoConfig``, ``AutoModel``, ``AutoProcessor`` and ``pipeline(...)`` resolve the ``video_lavit`` model types.
Each component registers itself in ``video_lavit/registration.py``.
"""

from .hub_export import export_for_hub
from .registration import register_all

__version__ = "0.1.0"

register_all()
