"""Image processor of Video-LaVIT: the 224x224 CLIP-normalised input of the visual tokenizer.

Torchvision-free (PIL/NumPy backend) so that it works without the torchvision extra of transformers.
"""

from __future__ import annotations

import numpy as np
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs


class VideoLavitImageProcessorKwargs(ImagesKwargs, total=False):
    """Extra keyword arguments of :class:`VideoLavitImageProcessor`.

    do_train_transform (`bool`): use the original's training transform (shorter side resized to
        ``crop_size`` with bicubic filtering, then a centre crop) instead of the inference transform (a plain
        resize to ``size`` that does not keep the aspect ratio).
    """

    do_train_transform: bool | None


class VideoLavitImageProcessor(PilBackend):
    r"""Turns images (PIL, NumPy ``[H, W, 3]`` / ``[3, H, W]`` or torch tensors, single or batched) into
    ``pixel_values`` of shape ``[N, 3, 224, 224]``.

    Inference transform (the default, used for images and video keyframes): PIL bicubic resize to exactly
    ``size`` (aspect ratio not kept), scale to [0, 1], normalise with the OpenAI-CLIP mean/std.
    Training transform (``do_train_transform=True``): resize the shorter side to ``crop_size`` (bicubic), centre
    crop ``crop_size``, scale, normalise.
    """

    valid_kwargs = VideoLavitImageProcessorKwargs
    model_input_names = ["pixel_values"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 224, "width": 224}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = False
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_train_transform = False

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | None,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float] | None,
        image_std: float | list[float] | None,
        do_pad: bool | None,
        pad_size: SizeDict | None,
        return_tensors=None,
        do_train_transform: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        if do_train_transform:
            if crop_size is None or not (crop_size.height and crop_size.width):
                raise ValueError(f"do_train_transform needs crop_size with height and width, got {crop_size}")
            # shorter side -> crop size, as torchvision's Resize(int) does before the centre crop
            size = SizeDict(shortest_edge=min(crop_size.height, crop_size.width))
            do_resize, do_center_crop = True, True
        return super()._preprocess(
            images, do_resize=do_resize, size=size, resample=resample, do_center_crop=do_center_crop,
            crop_size=crop_size, do_rescale=do_rescale, rescale_factor=rescale_factor, do_normalize=do_normalize,
            image_mean=image_mean, image_std=image_std, do_pad=do_pad, pad_size=pad_size,
            return_tensors=return_tensors, **kwargs,
        )


__all__ = ["VideoLavitImageProcessor"]
