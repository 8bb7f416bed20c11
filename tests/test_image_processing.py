import numpy as np
import pytest
import torch
from PIL import Image

from video_lavit.conversion.parity.common import Fixture
from video_lavit.processing.image_processing_video_lavit import VideoLavitImageProcessor


def _image(height=200, width=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_eval_transform_matches_fixture(fixtures_dir):
    from video_lavit.conversion.parity.preprocess import check_preprocess_image

    results = check_preprocess_image(Fixture.load(fixtures_dir / "preprocess_image.json"), None)
    assert results and all(r.passed for r in results), [(r.name, r.max_diff, r.detail) for r in results]


def test_eval_transform_squashes_and_normalises():
    processor = VideoLavitImageProcessor()
    image = np.full((100, 400, 3), 255, dtype=np.uint8)
    out = processor(image, return_tensors="pt")
    assert out["pixel_values"].shape == (1, 3, 224, 224)
    expected = (1.0 - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
    torch.testing.assert_close(out["pixel_values"][0, :, 112, 112], expected.float(), atol=1e-5, rtol=0)


def test_batch_of_mixed_inputs_is_ordered():
    processor = VideoLavitImageProcessor()
    a, b = _image(seed=1), _image(120, 90, seed=2)
    batch = processor([a, Image.fromarray(b), torch.from_numpy(a).permute(2, 0, 1)], return_tensors="pt")
    single_b = processor(b, return_tensors="pt")["pixel_values"][0]
    assert batch["pixel_values"].shape == (3, 3, 224, 224)
    torch.testing.assert_close(batch["pixel_values"][1], single_b)
    torch.testing.assert_close(batch["pixel_values"][0], batch["pixel_values"][2])


def test_train_transform_keeps_aspect_and_centre_crops():
    processor = VideoLavitImageProcessor()
    # left third red, middle third green, right third blue: the centre crop of a 3:1 image sees only green
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    image[:, :100, 0] = 255
    image[:, 100:200, 1] = 255
    image[:, 200:, 2] = 255
    train = processor(image, do_train_transform=True, return_tensors="pt")["pixel_values"][0]
    evaluated = processor(image, return_tensors="pt")["pixel_values"][0]
    green = (torch.tensor([0.0, 1.0, 0.0]) - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
    torch.testing.assert_close(train[:, 112, 10], green.float(), atol=1e-4, rtol=0)
    torch.testing.assert_close(train[:, 112, 213], green.float(), atol=1e-4, rtol=0)
    # the squashing eval transform keeps the red third on the left
    assert evaluated[0, 112, 10] > 1.5


def test_save_load_round_trip(tmp_path):
    processor = VideoLavitImageProcessor(do_train_transform=True, size={"height": 112, "width": 112})
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    loaded = VideoLavitImageProcessor.from_pretrained(tmp_path)
    assert loaded.do_train_transform is True
    assert (loaded.size.height, loaded.size.width) == (112, 112)
    assert loaded.to_dict() == processor.to_dict()


def test_auto_image_processor_loads_ours(tmp_path):
    import video_lavit  # noqa: F401  (registers the Auto classes)
    from transformers import AutoImageProcessor

    VideoLavitImageProcessor().save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "VideoLavitImageProcessor"


def test_rejects_bad_images():
    processor = VideoLavitImageProcessor()
    with pytest.raises((ValueError, TypeError)):
        processor("not an image at all")
    with pytest.raises((ValueError, TypeError)):
        processor(np.zeros((4, 4, 4, 4, 4), dtype=np.uint8))
