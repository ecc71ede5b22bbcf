# python -m pytest tests/test_vision_adapters.py
"""Adapters and model loading on hand-made cases: targets in, predictions out, metrics computed; and
from_pretrained from a local folder written with save_pretrained."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from framework.errors import FrameworkError
from framework.vision.adapters import adapter_for
from framework.vision.categories import Categories
from framework.vision.collate import Collate
from framework.vision.metrics.classification import ClassificationScores
from framework.vision.metrics.detection import CocoAP, Detections
from framework.vision.metrics.panoptic import PanopticQuality
from framework.vision.metrics.semantic import SemanticIoU
from framework.vision.models import backbone_prefix, grouped, load_model
from framework.vision.sample import IGNORE_LABEL, Sample
from framework.vision.targets import semantic_target as adapter_semantic_target

NAMES = ["circle", "square", "triangle"]


def _image(height: int = 32, width: int = 32) -> torch.Tensor:
    return torch.zeros(3, height, width)


def _scene(height: int = 32, width: int = 32) -> Sample:
    """Two objects and a crowd in a panoptic map: square (label 1) at rows/cols 4..12, circle (label 0)
    at rows 16..28 / cols 8..24, a crowd of triangles (label 2) at rows 0..4 / cols 24..32; the rest void."""
    panoptic = torch.zeros(height, width, dtype=torch.int32)
    panoptic[4:12, 4:12] = 1
    panoptic[16:28, 8:24] = 2
    panoptic[0:4, 24:32] = 3
    return Sample(image=_image(height, width), image_id=7, orig_size=(height, width),
                  labels=torch.tensor([1, 0, 2]), iscrowd=torch.tensor([False, False, True]), panoptic=panoptic)


def test_classification_round_trip():
    model, pretrained = load_model("classification", "resnet-tiny", NAMES)
    assert not pretrained
    adapter = adapter_for(model, "classification")
    samples = [Sample(image=_image(), labels=torch.tensor([label])) for label in (2, 0, 1, 2)]
    batch = Collate(size_divisor=1)(samples)
    inputs = adapter.inputs(batch)
    assert inputs["labels"].tolist() == [2, 0, 1, 2]
    outputs = model(**inputs)
    assert adapter.predictions(outputs, batch).shape == (4, 3) and torch.isfinite(adapter.loss(outputs))
    # hand-made logits: top-1 right on 3 of 4 (the last image is called class 0), the truth always in the top 2
    logits = torch.tensor([[0.0, 1, 5], [5, 1, 0], [0, 5, 1], [5, 0, 4]])
    scores = ClassificationScores(3, top_k=2)
    scores.update(logits, inputs["labels"])
    result = scores.compute()
    assert result["acc"] == 0.75 and result["top2_acc"] == 1.0
    # class 0: precision 1/2, recall 1; class 1: 1, 1; class 2: 1, 1/2 -> F1 (2/3 + 1 + 2/3) / 3
    assert result["precision"] == pytest.approx(5 / 6) and result["recall"] == pytest.approx(5 / 6)
    assert result["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert scores.confusion_matrix()[2].tolist() == [1, 0, 1]


@pytest.mark.parametrize("preset", ["segformer-tiny", "upernet-tiny"])
def test_semantic_targets_ignore_void_crowd_and_padding(preset):
    model, _ = load_model("semantic_segmentation", preset, NAMES)
    adapter = adapter_for(model)
    # padded to 32 x 32; two images: UperNet's pooling module has BatchNorms over 1x1 maps, which need
    # more than one value per channel in training
    batch = Collate(size_divisor=32)([_scene(32, 24), _scene(32, 24)])
    target = adapter.inputs(batch)["labels"][0]
    assert target[5, 5] == 1 and target[20, 10] == 0
    assert target[1, 23] == IGNORE_LABEL            # the crowd
    assert target[14, 2] == IGNORE_LABEL            # void
    assert (target[:, 24:] == IGNORE_LABEL).all()   # padding
    outputs = model(**adapter.inputs(batch))
    assert torch.isfinite(adapter.loss(outputs))
    assert adapter.predictions(outputs, batch).shape == (2, 32, 32)  # label maps at the padded image size


def test_semantic_predictions_upsample_to_the_image_and_score_perfectly():
    model, _ = load_model("semantic_segmentation", "tiny", NAMES)
    adapter = adapter_for(model)
    # an image of 32 x 24, padded to 32 x 32: top half class 0, bottom half class 2
    semantic = torch.zeros(32, 24, dtype=torch.int64)
    semantic[16:] = 2
    batch = Collate(size_divisor=32)([Sample(image=_image(32, 24), semantic=semantic)])
    target = adapter.targets(batch)
    assert (target[0, :, 24:] == IGNORE_LABEL).all()
    # logits at 1/4 resolution, as SegFormer's, right on every 4x4 block (padding called class 1)
    coarse = target[:, ::4, ::4].clone()
    coarse[coarse == IGNORE_LABEL] = 1
    logits = torch.nn.functional.one_hot(coarse, 3).permute(0, 3, 1, 2).float() * 10
    pred = adapter.predictions(SimpleNamespace(logits=logits), batch)
    assert pred.shape == target.shape
    metric = SemanticIoU(3)
    metric.update(pred, target)
    result = metric.compute()
    # bilinear upsampling keeps a boundary on a block edge where it is; class 1 is only on padding
    assert result["miou"] == pytest.approx(1.0) and result["pixel_accuracy"] == 1.0


@pytest.mark.parametrize("preset", ["detr-tiny", "conditional_detr-tiny", "deformable_detr-tiny", "rt_detr-tiny"])
def test_detr_family_round_trip(preset):
    model, _ = load_model("object_detection", preset, NAMES)
    adapter = adapter_for(model)
    # the image's own part is 32 x 24; the batch is padded to 32 x 32 by a wider second image
    batch = Collate(size_divisor=32)([_scene(32, 24), _scene(32, 32)])
    targets = adapter.inputs(batch)["labels"]
    assert targets[0]["class_labels"].tolist() == [1, 0]  # the crowd is no training target
    # square: xyxy (4, 4, 12, 12) in a 24 wide, 32 high image -> cxcywh fractions of that size
    assert targets[0]["boxes"][0].tolist() == pytest.approx([8 / 24, 8 / 32, 8 / 24, 8 / 32])
    model.train()
    assert torch.isfinite(adapter.loss(model(**adapter.inputs(batch))))
    # outputs that predict exactly the targets, with the right classes, come back as the pixel boxes
    queries = 5
    boxes = torch.full((2, queries, 4), 0.5)
    logits = torch.full((2, queries, model.config.num_labels + (preset == "detr-tiny")), -10.0)
    for index, target in enumerate(targets):
        count = len(target["class_labels"])
        boxes[index, :count] = target["boxes"]
        logits[index, torch.arange(count), target["class_labels"]] = 10.0
    preds = adapter.predictions(SimpleNamespace(logits=logits, pred_boxes=boxes), batch)
    found = sorted((int(l), [round(v, 3) for v in b]) for l, b in zip(preds[0].labels[:2], preds[0].boxes[:2].tolist()))
    assert found == [(0, [8, 16, 24, 28]), (1, [4, 4, 12, 12])]  # best-scored first: the two real objects
    metric = CocoAP(("bbox",))
    for pred, sample, size in zip(preds, batch.targets, [(32, 24), (32, 32)]):
        metric.update(pred, Detections.from_sample(sample), image_id=sample.image_id + size[1], image_size=size)
    assert metric.compute()["bbox_ap"] == pytest.approx(1.0)


def _query_outputs(queries: list[tuple[int, torch.Tensor]], num_labels: int, size: tuple[int, int]) -> SimpleNamespace:
    """Mask2Former outputs for one image where query i is sure of class label_i over mask_i (logit +-10),
    and every other query of 6 says "no object"."""
    logits = torch.full((1, 6, num_labels + 1), -10.0)
    logits[0, :, num_labels] = 10.0
    masks = torch.full((1, 6, *size), -10.0)
    for index, (label, mask) in enumerate(queries):
        logits[0, index, num_labels], logits[0, index, label] = -10.0, 10.0
        masks[0, index][mask] = 10.0
    return SimpleNamespace(class_queries_logits=logits, masks_queries_logits=masks)


def test_mask2former_targets_leave_out_crowds_and_padding():
    model, _ = load_model("universal_segmentation", "mask2former-tiny", NAMES)
    adapter = adapter_for(model)
    batch = Collate(size_divisor=32)([_scene(32, 24), _scene(32, 32)])
    inputs = adapter.inputs(batch)
    masks, labels = inputs["mask_labels"][0], inputs["class_labels"][0]
    assert labels.tolist() == [1, 0]  # the crowd of triangles is no target
    assert masks.shape == (2, 32, 32) and masks.dtype == torch.float32
    assert masks[0, 4:12, 4:12].all() and masks[0].sum() == 64 and masks[1].sum() == 12 * 16
    assert not masks[:, :, 24:].any()  # padding
    model.train()
    assert torch.isfinite(adapter.loss(model(**inputs)))


def test_mask2former_predictions_score_perfectly_when_the_queries_are_right():
    model, _ = load_model("universal_segmentation", "mask2former-tiny", NAMES)
    # square and circle are things, triangle is stuff here (the crowd region is void for PQ and mIoU)
    categories = Categories.from_names(NAMES, things=[True, True, False])
    adapter = adapter_for(model, outputs=("panoptic", "instance", "semantic"), things=categories.thing_mask())
    scene = _scene(32, 24)
    batch = Collate(size_divisor=32)([scene])
    target = batch.targets[0].panoptic
    outputs = _query_outputs([(1, target == 1), (0, target == 2)], len(NAMES), (32, 32))
    (pred,) = adapter.predictions(outputs, batch)
    assert torch.equal(pred.panoptic, target.masked_fill(target == 3, 0)) and pred.segment_labels.tolist() == [1, 0]
    assert sorted(pred.instances.labels[:2].tolist()) == [0, 1]  # the two sure queries score highest
    pq = PanopticQuality(categories)
    pq.update(pred.panoptic, pred.segment_labels, target, scene.labels, scene.iscrowd)
    assert pq.compute()["pq"] == 1.0
    ap = CocoAP(("segm",))
    ap.update(pred.instances, Detections.from_sample(batch.targets[0], things_only=categories.thing_mask()), image_id=1)
    assert ap.compute()["mask_ap"] == pytest.approx(1.0)
    iou = SemanticIoU(3)
    iou.update(pred.semantic, adapter_semantic_target(batch.targets[0]))
    assert iou.compute()["miou"] == 1.0


def test_mask2former_panoptic_merges_stuff_and_drops_covered_queries():
    model, _ = load_model("universal_segmentation", "mask2former-tiny", NAMES)
    adapter = adapter_for(model, things=torch.tensor([True, True, False]))
    batch = Collate(size_divisor=32)([Sample(image=_image(32, 32))])

    def predict(thing_columns: slice):
        left, right, thing = (torch.zeros(32, 32, dtype=torch.bool) for _ in range(3))
        left[:, :8], right[:, 24:], thing[:, thing_columns] = True, True, True
        # two sure stuff queries (triangle) either side of a thing query that is less sure (0.88)
        outputs = _query_outputs([(2, left), (2, right), (0, thing)], len(NAMES), (32, 32))
        outputs.class_queries_logits[0, 2, :2] = torch.tensor([2.0, 0.0])
        (pred,) = adapter.predictions(outputs, batch)
        return pred

    # the thing's mask covers columns 6..25; the stuff takes its first and last two: 16 of 20 columns
    # (80 %) stay its own and it survives; the two stuff queries are one segment
    pred = predict(slice(6, 26))
    assert pred.segment_labels.tolist() == [2, 0]
    assert (pred.panoptic == 1).sum() == 2 * 8 * 32 and (pred.panoptic == 2).sum() == 16 * 32
    # columns 4..27: 16 of 24 stay its own (< 80 %): the thing is dropped and its pixels are void
    pred = predict(slice(4, 28))
    assert pred.segment_labels.tolist() == [2] and (pred.panoptic == 0).sum() == 16 * 32


def test_from_pretrained_local_folder_keeps_weights_and_classes(tmp_path):
    model, _ = load_model("semantic_segmentation", "tiny", NAMES)
    model.save_pretrained(tmp_path / "saved")
    loaded, pretrained = load_model("semantic_segmentation", str(tmp_path / "saved"), NAMES)
    assert pretrained and type(loaded) is type(model)
    assert loaded.config.id2label == {0: "circle", 1: "square", 2: "triangle"}
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    # a pretrained backbone trains at the multiplier, the new head at the base rate
    groups = {g["name"]: g["lr"] for g in grouped(loaded, pretrained, 0.1).param_groups(1.0, 0.0)}
    assert groups["backbone/decay"] == pytest.approx(0.1) and groups["default/decay"] == 1.0
    assert backbone_prefix(loaded) == "segformer"


def test_from_pretrained_replaces_a_head_of_another_size(tmp_path):
    model, _ = load_model("classification", "tiny", NAMES)
    model.save_pretrained(tmp_path / "vit")
    loaded, _ = load_model("classification", str(tmp_path / "vit"), NAMES + ["star", "ring"])
    assert loaded.classifier.out_features == 5
    assert torch.equal(loaded.vit.embeddings.patch_embeddings.projection.weight,
                       model.vit.embeddings.patch_embeddings.projection.weight)


def test_model_loading_errors_are_one_clear_line(tmp_path):
    with pytest.raises(FrameworkError, match=r"model folder not found: looked for .*nowhere/config.json"):
        load_model("classification", str(tmp_path / "nowhere"), NAMES)
    with pytest.raises(FrameworkError, match="no vision adapter for model type"):
        adapter_for(torch.nn.Linear(2, 2))


def test_mask2former_padding_counts_for_no_query():
    model, _ = load_model("universal_segmentation", "mask2former-tiny", NAMES)
    adapter = adapter_for(model, things=torch.tensor([True, True, False]))
    # a 32 x 24 image padded to 32 x 32: a thing query (first, less sure) over columns 4..19 and a sure
    # stuff query over columns 0..11, which takes half of the thing's mask: the thing is dropped. Padding
    # has probability 0 under every query; were it counted, the first query would win its 256 pixels.
    batch = Collate(size_divisor=32)([Sample(image=_image(32, 24))])
    thing, stuff = torch.zeros(32, 32, dtype=torch.bool), torch.zeros(32, 32, dtype=torch.bool)
    thing[:, 4:20], stuff[:, :12] = True, True
    outputs = _query_outputs([(0, thing), (2, stuff)], len(NAMES), (32, 32))
    outputs.class_queries_logits[0, 0, :2] = torch.tensor([2.0, 0.0])
    (pred,) = adapter.predictions(outputs, batch)
    assert pred.segment_labels.tolist() == [2] and (pred.panoptic[:, 24:] == 0).all()


def test_mask2former_from_a_local_folder_trains_its_swin_backbone_at_the_multiplier(tmp_path):
    model, _ = load_model("universal_segmentation", "tiny", NAMES)
    model.save_pretrained(tmp_path / "m2f")
    loaded, pretrained = load_model("universal_segmentation", str(tmp_path / "m2f"), NAMES)
    assert pretrained and backbone_prefix(loaded) == "model.pixel_level_module.encoder"
    groups = grouped(loaded, pretrained, 0.1)
    rates = {g["name"]: g["lr"] for g in groups.param_groups(1.0, 0.0)}
    assert rates["backbone/decay"] == pytest.approx(0.1) and rates["default/decay"] == 1.0
    backbone = {n for g in groups.parameter_groups() if g.name.startswith("backbone/") for n in g.names}
    assert backbone and all(n.startswith("model.pixel_level_module.encoder.") for n in backbone)
