# python -m pytest tests/test_vision_architectures.py
"""The real-size architectures have their papers' parameter counts (built on the meta device: no memory,
no init), and an ImageNet backbone saved with save_pretrained composes into a preset's backbone."""

from __future__ import annotations

import pytest
import torch

from framework.errors import FrameworkError
from framework.vision.backbones import set_detr_backbone_training
from framework.vision.models import _tiny_resnet, grouped, load_model

NAMES = ["circle", "square", "triangle"]

# (task kind, preset, classes of the published head, published parameters in M, the unit it is rounded
# to). Each count is checked to be within 1 % of the published one, or within half its rounding unit
# when the paper rounds coarser than that (a paper's "41M" means 40.5-41.5 M).
PUBLISHED = [
    # Dosovitskiy et al. 2021, Table 1: ViT-Base 86M; timm's vit_base_patch16_224 with the ImageNet-1k
    # head: 86.6 M (86,567,656)
    ("classification", "vit-b16", 1000, 86.6, 0.1),
    # He et al. 2016 / torchvision's resnet50 with the 1000-class head: 25.6 M (25,557,032)
    ("classification", "resnet-50", 1000, 25.6, 0.1),
    # Xie et al. 2021, Table 1 (ADE20K, 150 classes): MiT-B0 3.4 M + decoder 0.4 M = 3.8 M (rounded to 0.1)
    ("semantic_segmentation", "segformer-b0", 150, 3.8, 0.1),
    # Liu et al. 2022 (ConvNeXt), Table 3: UperNet ConvNeXt-T, ADE20K 150 classes, 60M (auxiliary head
    # included, as mmsegmentation counts it)
    ("semantic_segmentation", "upernet-convnext-tiny", 150, 60.0, 1.0),
    # Carion et al. 2020, Table 1: DETR R50 41M; 91 COCO category ids (+ "no object" output). DETR
    # counts trainable parameters: with its pretrained ResNet's stem and first stage frozen, 41.30 M
    # (all of it: 41.52 M, outside the rounding)
    ("object_detection", "detr-r50", 91, 41.0, 1.0),
    # Zhu et al. 2021, Table 1: Deformable DETR (single stage, no box refinement) 40M; 91 category ids;
    # trainable as DETR counts them: 39.85 M (all: 40.07 M)
    ("object_detection", "deformable-detr-r50", 91, 40.0, 1.0),
    # Cheng et al. 2022 (Mask2Former), Table 1 (COCO panoptic, 133 classes): Swin-T 47M, R50 44M
    ("universal_segmentation", "mask2former-swin-tiny", 133, 47.0, 1.0),
    ("universal_segmentation", "mask2former-r50", 133, 44.0, 1.0),
]


@pytest.mark.parametrize("kind, preset, classes, published, unit", PUBLISHED, ids=[p[1] for p in PUBLISHED])
def test_parameter_counts_match_the_papers(kind, preset, classes, published, unit):
    with torch.device("meta"):  # shapes only: a real-size model in milliseconds
        model, pretrained = load_model(kind, preset, [f"class{i}" for i in range(classes)])
    assert not pretrained
    set_detr_backbone_training(model, pretrained=True)  # the DETR family's count: its recipe's trainable ones
    millions = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    assert abs(millions - published) <= max(0.01 * published, unit / 2), f"{preset}: {millions:.3f} M"


def _tiny_swin():
    from transformers import SwinConfig

    # the tiny Mask2Former preset's Swin (framework/vision/models.py)
    return SwinConfig(image_size=128, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4],
                      window_size=4)


def _rates(model, pretrained, multiplier=0.1):
    return {g["name"]: g["lr"] for g in grouped(model, pretrained, multiplier).param_groups(1.0, 0.0)}


def test_an_imagenet_swin_composes_into_mask2former(tmp_path):
    from transformers import SwinForImageClassification

    imagenet = SwinForImageClassification(_tiny_swin())  # an image classifier: its head is left out
    imagenet.save_pretrained(tmp_path / "swin")
    model, pretrained = load_model("universal_segmentation", "tiny", NAMES, backbone=str(tmp_path / "swin"))
    assert pretrained
    arrived = model.model.pixel_level_module.encoder.swin.state_dict()
    saved = imagenet.swin.state_dict()
    for key, value in arrived.items():
        assert torch.equal(value, saved[key]), key
    # the rest starts random: a fresh build of the same preset differs only outside the backbone
    assert _rates(model, pretrained) == {"backbone/decay": pytest.approx(0.1), "backbone/no_decay": pytest.approx(0.1),
                                         "default/decay": 1.0, "default/no_decay": 1.0}


def test_an_imagenet_resnet_composes_into_detr_and_trains_its_last_stages(tmp_path):
    from transformers import ResNetModel

    imagenet = ResNetModel(_tiny_resnet())
    imagenet.save_pretrained(tmp_path / "resnet")
    model, pretrained = load_model("object_detection", "detr-tiny", NAMES, backbone=str(tmp_path / "resnet"))
    backbone = model.model.backbone.model
    for key, value in backbone.state_dict().items():  # DETR's frozen batch norms' statistics included
        assert torch.equal(value, imagenet.state_dict()[key]), key
    # DETR's recipe: stem and first stage frozen, stages 2-4 at the backbone multiplier
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".embedder." in n or ".stages.0." in n for n in frozen)
    assert _rates(model, pretrained)["backbone/decay"] == pytest.approx(0.1)
    random_init, _ = load_model("object_detection", "detr-tiny", NAMES)
    assert all(p.requires_grad for p in random_init.parameters())  # random features all train


@pytest.mark.parametrize("kind, preset, family", [("classification", "vit-tiny", "ViTModel"),
                                                   ("semantic_segmentation", "segformer-tiny", "SegformerModel")])
def test_a_whole_base_model_composes_into_its_classifier_or_segmenter(kind, preset, family, tmp_path):
    import transformers

    tiny, _ = load_model(kind, preset, NAMES)  # the same layout, other random weights
    imagenet = getattr(transformers, family)(tiny.base_model.config)
    imagenet.save_pretrained(tmp_path / "base")
    model, pretrained = load_model(kind, preset, NAMES, backbone=str(tmp_path / "base"))
    for key, value in model.base_model.state_dict().items():
        assert torch.equal(value, imagenet.state_dict()[key]), key
    assert _rates(model, pretrained)["backbone/decay"] == pytest.approx(0.1)


def test_backbone_errors_are_one_line_naming_the_path(tmp_path):
    from transformers import ResNetModel, SwinModel

    def error(backbone, name="tiny", kind="universal_segmentation"):
        with pytest.raises(FrameworkError) as caught:
            load_model(kind, name, NAMES, backbone=backbone)
        assert "\n" not in str(caught.value)
        return str(caught.value)

    assert f"looked for {tmp_path / 'nowhere' / 'config.json'}" in error(str(tmp_path / "nowhere"))
    ResNetModel(_tiny_resnet()).save_pretrained(tmp_path / "resnet")
    assert "a resnet model, but tiny has no resnet backbone" in error(str(tmp_path / "resnet"))
    wider = _tiny_swin()
    wider.embed_dim = 32
    SwinModel(wider).save_pretrained(tmp_path / "wide")
    message = error(str(tmp_path / "wide"))
    assert str(tmp_path / "wide") in message and "differ in shape" in message
    deeper = _tiny_swin()
    deeper.depths = [1, 1, 2, 1]
    SwinModel(deeper).save_pretrained(tmp_path / "deep")
    assert "are the depths the same?" in error(str(tmp_path / "deep"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(_tiny_swin().to_json_string())
    assert f"task.model.backbone {tmp_path / 'empty'}: cannot load a backbone" in error(str(tmp_path / "empty"))
    assert "local Hugging Face cache only" in error("acme/no-such-backbone")
    assert "needs a preset as task.model.name" in error(str(tmp_path / "deep"), name=str(tmp_path / "deep"))


def _lines(*overrides: str) -> list[str]:
    from framework.commands.describe import task_lines
    from framework.config import Request, combine, parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry

    request = combine(Request(), parse_overrides(list(overrides)))
    registry = Registry(request.plugin_paths())
    return task_lines(expand(request, registry), registry)


def test_the_run_header_says_what_each_task_trains(tmp_path):
    # the default: the tiny preset on the bundled scenes, upscaled to the recipe's 1024 crops; one line
    # for a grid of two optimizers; digits defines no describe() and has no line
    assert _lines("tasks=coco_panoptic,digits", "optimizers=adamw_baseline,sgd_baseline") == [
        "coco_panoptic: mask2former tiny preset (0.368 M params, random init) on the bundled synthetic scenes "
        "(128 px, upscaled to 1024 px crops)"]
    # real size, pretrained backbone, real data (missing here: the count waits for its classes)
    (line,) = _lines("tasks=coco_detection", "task.model.name=detr-r50", f"task.model.backbone={tmp_path}/r50",
                     f"task.data_dir={tmp_path}/coco", "task.crop_size=800")
    assert line == (f"coco_detection: detr-r50 preset (params unknown; backbone from {tmp_path}/r50, the rest random "
                    f"init) on COCO-format data at {tmp_path}/coco (800 px crops)")
    assert _lines("tasks=classification", "task.model.name=vit-b16", "task.image_size=224") == [
        "classification: vit-b16 preset (85.8 M params, random init) on the bundled synthetic shapes (64 px, "
        "upscaled to 224 px inputs)"]


def test_framework_run_prints_it_first(cli, tmp_path):
    # a run that fails at once on its missing data: the header comes before anything else
    proc = cli("run", "tasks=classification", f"task.data_dir={tmp_path}/none", "engine.workers=0", "-o",
               str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the cell fails on its data, after the header
    assert proc.stdout.splitlines()[0] == (f"classification: vit tiny preset (params unknown, random init) on "
                                           f"class-folder data at {tmp_path}/none (64 px inputs)")


def test_a_preset_with_a_pretrained_backbone_takes_the_backbones_normalisation(tmp_path):
    import json

    from framework.vision.normalization import model_normalization

    folder = tmp_path / "vit-in21k"
    folder.mkdir()
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": 0.5, "image_std": 0.5}))
    assert model_normalization("vit-tiny", str(folder)).mean == (0.5, 0.5, 0.5)
    assert model_normalization("vit-tiny").source == "ImageNet"  # random init: nothing to match
