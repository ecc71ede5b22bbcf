# python -m pytest tests/test_vision_normalization.py
"""A pretrained model's images are normalised with its own processor's image_mean and image_std (read
from the preprocessor_config.json its image processor saved), a random-init preset with ImageNet's;
a missing file warns, a broken one is one clear error."""

from __future__ import annotations

import pytest
import torch

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import FrameworkError
from framework.vision.geometry import IMAGENET_MEAN, IMAGENET_STD
from framework.vision.models import load_model
from framework.vision.normalization import PROCESSOR_FILE, model_normalization

REGISTRY = Registry()
MEAN, STD = (0.5, 0.25, 0.75), (0.5, 0.125, 0.25)  # nothing like ImageNet's


def _pretrained_folder(path, processor: bool = True):
    """A tiny ViT written by save_pretrained, with its image processor's preprocessor_config.json."""
    from transformers import ViTImageProcessor

    model, _ = load_model("classification", "tiny", ["circle", "square"])
    model.save_pretrained(path)
    if processor:
        ViTImageProcessor(image_mean=list(MEAN), image_std=list(STD), size={"height": 64, "width": 64}).save_pretrained(path)
    return path


def _first_val_image(tmp_path, model_name: str) -> torch.Tensor:
    from framework.training.run import build

    request = parse_overrides(["tasks=classification", "optimizers=adamw_baseline", f"engine.output_dir={tmp_path}",
                               f"task.model.name={model_name}"])
    (spec,) = expand(request, REGISTRY)
    _, datamodule, *_ = build(spec, REGISTRY, tmp_path / "run")
    datamodule.setup("fit")
    return datamodule.data_val[0].image


def test_the_data_pipeline_normalises_with_the_pretrained_models_processor(tmp_path, capfd):
    folder = _pretrained_folder(tmp_path / "vit")
    assert (folder / PROCESSOR_FILE).is_file()
    pretrained = _first_val_image(tmp_path, str(folder))
    preset = _first_val_image(tmp_path, "tiny")  # the same image, normalised with ImageNet's values
    assert "image_mean [0.5, 0.25, 0.75]" in capfd.readouterr().err  # it says which values it uses
    shape = (3, 1, 1)
    pixels = preset * torch.tensor(IMAGENET_STD).view(shape) + torch.tensor(IMAGENET_MEAN).view(shape)
    expected = (pixels - torch.tensor(MEAN).view(shape)) / torch.tensor(STD).view(shape)
    torch.testing.assert_close(pretrained, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(pretrained, preset, atol=1e-2)


def test_presets_keep_imagenet_and_a_folder_without_a_processor_file_warns(tmp_path):
    assert model_normalization("tiny").mean == IMAGENET_MEAN and model_normalization("resnet-tiny").std == IMAGENET_STD
    folder = _pretrained_folder(tmp_path / "bare", processor=False)
    with pytest.warns(UserWarning, match=f"no {PROCESSOR_FILE} in .*bare: normalising images with the ImageNet mean"):
        assert model_normalization(str(folder)).mean == IMAGENET_MEAN


def test_do_normalize_false_passes_pixels_through(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / PROCESSOR_FILE).write_text('{"do_normalize": false, "image_mean": [0.5, 0.5, 0.5]}')
    normalization = model_normalization(str(folder))
    assert (normalization.mean, normalization.std) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a readable JSON file"),
    ('{"image_mean": [0.5, 0.5, 0.5]}', "no image_std"),
    ('{"image_mean": [0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}', "image_mean must be a number or a list of 1 or 3 numbers"),
    ('{"image_mean": 0.5, "image_std": [0.5, 0, 0.5]}', r"image_std must be positive, got \[0.5, 0.0, 0.5\]"),
])
def test_a_broken_processor_file_is_one_clear_error(tmp_path, content, message):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / PROCESSOR_FILE).write_text(content)
    with pytest.raises(FrameworkError, match=message) as caught:
        model_normalization(str(folder))
    assert str(folder / PROCESSOR_FILE) in str(caught.value) and "\n" not in str(caught.value)
