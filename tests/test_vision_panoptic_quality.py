# python -m pytest tests/test_vision_panoptic_quality.py
"""Panoptic quality: hand-computed cases (void, crowd, unassigned prediction pixels, the IoU > 0.5 rule),
torchmetrics' PanopticQuality on randomized scenes, and the file-based evaluation on written PNGs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from framework.errors import FrameworkError
from framework.vision.categories import Categories
from framework.vision.images import id_to_rgb
from framework.vision.metrics.panoptic import PanopticQuality, panoptic_quality_from_files

# labels 0, 1 are things, 2, 3 stuff
CATEGORIES = Categories.from_names(["cat", "dog", "grass", "sky"], [True, True, False, False])


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int32)


def test_void_pixels_leave_the_union_and_a_wrong_class_is_a_false_positive():
    target = t([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [2, 2, 2, 2],
                [2, 2, 2, 2]])
    pred = t([[1, 1, 1, 0],
              [1, 1, 0, 0],
              [2, 2, 2, 2],
              [2, 2, 2, 3]])
    metric = PanopticQuality(CATEGORIES, per_class=True)
    metric.update(pred, torch.tensor([0, 2, 0]), target, torch.tensor([0, 2]))
    out = metric.compute()
    # cat: 4 of its 5 predicted pixels on the target, 1 on void -> IoU 4 / (5 + 4 - 4 - 1) = 1; plus a
    # one-pixel "cat" on grass -> FP. grass: IoU 7 / 8.
    assert out["pq/cat"] == pytest.approx(1.0 * 1 / 1.5)
    assert out["sq/cat"] == pytest.approx(1.0) and out["rq/cat"] == pytest.approx(2 / 3)
    assert out["pq/grass"] == pytest.approx(7 / 8) and out["rq/grass"] == pytest.approx(1.0)
    assert out["pq"] == pytest.approx((2 / 3 + 7 / 8) / 2)
    assert out["pq_things"] == pytest.approx(2 / 3) and out["pq_stuff"] == pytest.approx(7 / 8)
    assert "pq/dog" not in out and "pq/sky" not in out  # classes that never occurred are not averaged


def test_crowd_regions_neither_match_nor_count_as_missed_and_excuse_predictions_of_their_class():
    target = t([[1, 1, 2, 2],
                [1, 1, 2, 2],
                [1, 1, 3, 3],
                [1, 1, 3, 3]])
    pred = t([[1, 1, 2, 2],
              [1, 1, 2, 2],
              [4, 1, 3, 3],
              [4, 4, 3, 3]])
    metric = PanopticQuality(CATEGORIES, per_class=True)
    metric.update(pred, torch.tensor([0, 0, 2, 2]), target, torch.tensor([0, 0, 2]),
                  target_iscrowd=torch.tensor([True, False, False]))
    out = metric.compute()
    # a "cat" lying on the cat crowd is no false positive; a "grass" on the cat crowd is
    assert out["pq/cat"] == pytest.approx(1.0)
    assert out["pq/grass"] == pytest.approx(2 / 3) and out["sq/grass"] == pytest.approx(1.0)
    assert out["pq"] == pytest.approx((1 + 2 / 3) / 2)


def test_unassigned_prediction_pixels_are_ignored_but_a_missed_segment_is_a_false_negative():
    target = t([[1, 1, 2, 2], [1, 1, 2, 2]])
    pred = t([[0, 0, 1, 1], [0, 0, 1, 1]])
    metric = PanopticQuality(CATEGORIES, per_class=True)
    metric.update(pred, torch.tensor([2]), target, torch.tensor([0, 2]))
    out = metric.compute()
    assert out["pq/cat"] == 0.0 and out["rq/cat"] == 0.0  # COCO's rule (torchmetrics would skip it)
    assert out["pq/grass"] == 1.0 and out["pq"] == pytest.approx(0.5)


def test_iou_of_exactly_one_half_is_not_a_match():
    target = t([[1, 1, 1, 1]])
    pred = t([[1, 1, 0, 0]])
    metric = PanopticQuality(CATEGORIES, per_class=True)
    metric.update(pred, torch.tensor([0]), target, torch.tensor([0]))
    out = metric.compute()
    assert out["pq/cat"] == 0.0 and out["rq/cat"] == 0.0  # one FP and one FN: RQ = 0 / (0 + 1/2 + 1/2)


def test_perfect_prediction_and_empty_groups():
    target = t([[1, 2], [3, 3]])
    metric = PanopticQuality(CATEGORIES)
    metric.update(target, torch.tensor([0, 1, 3]), target, torch.tensor([0, 1, 3]))
    out = metric.compute()
    assert out["pq"] == out["sq"] == out["rq"] == out["pq_things"] == out["pq_stuff"] == 1.0
    empty = PanopticQuality(CATEGORIES).compute()
    assert math.isnan(empty["pq"]) and math.isnan(empty["pq_things"])


def random_scene(generator: torch.Generator, height: int = 24, width: int = 32):
    """Stuff bands, then thing rectangles on top, then scattered and blocky void; returns (map, labels)."""
    panoptic = torch.zeros(height, width, dtype=torch.int32)
    labels = []
    cuts = sorted(set(torch.randint(1, width, (2,), generator=generator).tolist()))
    stuff = torch.randperm(2, generator=generator) + 2
    for k, (a, b) in enumerate(zip([0] + cuts, cuts + [width])):
        labels.append(int(stuff[k % 2]) if k < 2 else int(stuff[0]))
        panoptic[:, a:b] = len(labels)
    # one segment per stuff class, as COCO has (a third band joins the first band's class)
    if len(labels) == 3:
        panoptic[panoptic == 3] = 1
        labels.pop()
    for _ in range(int(torch.randint(1, 7, (), generator=generator))):
        y0, x0 = int(torch.randint(0, height - 3, (), generator=generator)), int(torch.randint(0, width - 3, (), generator=generator))
        h, w = (int(v) for v in torch.randint(2, 12, (2,), generator=generator))
        labels.append(int(torch.randint(0, 2, (), generator=generator)))
        panoptic[y0 : y0 + h, x0 : x0 + w] = len(labels)
    panoptic[torch.rand(height, width, generator=generator) < 0.05] = 0
    y0, x0 = int(torch.randint(0, height - 4, (), generator=generator)), int(torch.randint(0, width - 6, (), generator=generator))
    panoptic[y0 : y0 + 4, x0 : x0 + 6] = 0
    return panoptic, torch.tensor(labels)


def perturb(panoptic: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
    """A prediction: shifted, some things relabelled, void filled, an extra segment; every pixel assigned."""
    shift = tuple(int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    pred = torch.roll(panoptic, shifts=shift, dims=(0, 1))
    pred_labels = labels.clone()
    for i in range(len(labels)):
        if labels[i] < 2 and float(torch.rand((), generator=generator)) < 0.3:
            pred_labels[i] = 1 - labels[i]
    pred[pred == 0] = 1
    y0, x0 = int(torch.randint(0, pred.shape[0] - 5, (), generator=generator)), int(torch.randint(0, pred.shape[1] - 5, (), generator=generator))
    pred_labels = torch.cat([pred_labels, torch.randint(0, 2, (1,), generator=generator)])
    pred[y0 : y0 + 5, x0 : x0 + 5] = len(pred_labels)
    return pred, pred_labels


def to_torchmetrics(panoptic: torch.Tensor, labels: torch.Tensor, void_category: int = 99) -> torch.Tensor:
    """(category, instance) pairs per pixel; void gets a category torchmetrics does not know."""
    category = torch.full(panoptic.shape, void_category, dtype=torch.int64)
    instance = torch.zeros(panoptic.shape, dtype=torch.int64)
    for k, label in enumerate(labels.tolist()):
        category[panoptic == k + 1] = label
        instance[panoptic == k + 1] = k + 1
    return torch.stack([category, instance], dim=-1)


@pytest.mark.parametrize("seed", range(8))
def test_equals_torchmetrics_on_random_scenes(seed):
    from torchmetrics.detection import PanopticQuality as Reference

    generator = torch.Generator().manual_seed(seed)
    ours = PanopticQuality(CATEGORIES, per_class=True)
    reference = Reference(things={0, 1}, stuffs={2, 3}, return_sq_and_rq=True, return_per_class=True)
    reference_mean = Reference(things={0, 1}, stuffs={2, 3}, return_sq_and_rq=True)
    for image in range(6):
        target, target_labels = random_scene(generator)
        pred, pred_labels = perturb(target, target_labels, generator)
        ours.update(pred, pred_labels, target, target_labels, image_id=image)
        preds_tm, target_tm = to_torchmetrics(pred, pred_labels)[None], to_torchmetrics(target, target_labels)[None]
        reference.update(preds_tm, target_tm)
        reference_mean.update(preds_tm, target_tm)
    out = ours.compute()
    pq, sq, rq = reference_mean.compute().tolist()
    assert out["pq"] == pytest.approx(pq, abs=1e-6)
    assert out["sq"] == pytest.approx(sq, abs=1e-6)
    assert out["rq"] == pytest.approx(rq, abs=1e-6)
    per_class = reference.compute()  # [classes, (pq, sq, rq)]
    for label, name in enumerate(CATEGORIES.names):
        if f"pq/{name}" in out:
            assert [out[f"pq/{name}"], out[f"sq/{name}"], out[f"rq/{name}"]] == pytest.approx(
                per_class[label].tolist(), abs=1e-6)
        else:
            assert per_class[label].tolist() == [0.0, 0.0, 0.0]
    things = [out[f"pq/{n}"] for n in ("cat", "dog") if f"pq/{n}" in out]
    assert out["pq_things"] == pytest.approx(sum(things) / len(things), abs=1e-9)


def write_panoptic(folder, name, maps_and_segments, categories, with_crowd):
    """A COCO panoptic json + PNG folder from index maps and labels."""
    (folder / name).mkdir()
    annotations = []
    for image_id, (panoptic, labels, crowd) in enumerate(maps_and_segments, start=1):
        ids = np.array([0] + [1000 + 7919 * k for k in range(1, len(labels) + 1)])  # arbitrary segment ids
        Image.fromarray(id_to_rgb(ids[panoptic.numpy()])).save(folder / name / f"{image_id}.png")
        segments = [{"id": int(ids[k + 1]), "category_id": categories.category_id(int(label)),
                     **({"iscrowd": int(crowd[k])} if with_crowd else {})} for k, label in enumerate(labels)]
        annotations.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": segments})
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 24, "width": 32} for i in range(1, len(annotations) + 1)]
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories.to_coco()}))
    return path


def test_from_files_equals_in_memory(tmp_path):
    generator = torch.Generator().manual_seed(11)
    categories = Categories((3, 9, 50, 70), ("cat", "dog", "grass", "sky"), (True, True, False, False))
    gts, preds = [], []
    metric = PanopticQuality(categories, per_class=True)
    for image_id in range(1, 6):
        target, labels = random_scene(generator)
        crowd = torch.rand(len(labels), generator=generator) < 0.2
        pred, pred_labels = perturb(target, labels, generator)
        gts.append((target, labels, crowd))
        preds.append((pred, pred_labels, torch.zeros(len(pred_labels), dtype=torch.bool)))
        metric.update(pred, pred_labels, target, labels, crowd, image_id=image_id)
    gt_json = write_panoptic(tmp_path, "gt", gts, categories, with_crowd=True)
    pred_json = write_panoptic(tmp_path, "pred", preds, categories, with_crowd=False)
    from_files = panoptic_quality_from_files(gt_json, tmp_path / "gt", pred_json, tmp_path / "pred", per_class=True)
    assert from_files == pytest.approx(metric.compute(), abs=1e-12)

    (tmp_path / "pred" / "3.png").write_bytes(b"not a png")
    with pytest.raises(FrameworkError, match="3.png"):
        panoptic_quality_from_files(gt_json, tmp_path / "gt", pred_json, tmp_path / "pred")


def write_string_id_pair(folder, gt_images, pred_images):
    """COCO panoptic ground truth and predictions whose image ids are strings (as Cityscapes' are): each
    image is (id, [(segment map with values 0..N), [category ids]]); predictions listed in reverse."""
    for name, images in (("gt", gt_images), ("pred", pred_images)):
        (folder / name).mkdir()
        annotations = []
        for image_id, (segment_map, category_ids) in images:
            ids = np.asarray(segment_map) * 37  # arbitrary segment ids, 0 stays void
            Image.fromarray(id_to_rgb(ids)).save(folder / name / f"{image_id}.png")
            segments = [{"id": 37 * (k + 1), "category_id": c} for k, c in enumerate(category_ids)]
            annotations.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": segments})
        if name == "pred":
            annotations.reverse()  # matched by id, not by position
        images_json = [{"id": i, "file_name": f"{i}.jpg", "height": 4, "width": 4} for i, _ in images]
        (folder / f"{name}.json").write_text(json.dumps(
            {"images": images_json, "annotations": annotations, "categories": CATEGORIES.to_coco()}))
    return folder / "gt.json", folder / "pred.json"


def test_from_files_compares_string_image_ids_as_given(tmp_path):
    cat, dog, grass, sky = CATEGORIES.ids
    half = [[1, 1, 2, 2]] * 4  # cat left, sky right
    wider = [[1, 1, 1, 2]] * 2 + [[1, 1, 2, 2]] * 2  # cat over 2 sky pixels: IoU 8/10 and 6/8
    corner = [[1, 2, 2, 2]] * 4  # a dog on 4 of 16 pixels (IoU 0.25, no match), the rest grass
    gt = [("frankfurt_000000_000294", (half, [cat, sky])), ("lindau_000001_000019", ([[1] * 4] * 4, [dog]))]
    pred = [("frankfurt_000000_000294", (wider, [cat, sky])), ("lindau_000001_000019", (corner, [dog, grass]))]
    gt_json, pred_json = write_string_id_pair(tmp_path, gt, pred)
    out = panoptic_quality_from_files(gt_json, tmp_path / "gt", pred_json, tmp_path / "pred", per_class=True)
    # cat 0.8, sky 0.75 (matched), dog 0 (a FP and a FN), grass 0 (a FP)
    assert [out["pq/cat"], out["pq/sky"], out["pq/dog"], out["pq/grass"]] == pytest.approx([0.8, 0.75, 0, 0])
    assert (out["pq"], out["pq_things"], out["pq_stuff"], out["rq"]) == pytest.approx((0.3875, 0.4, 0.375, 0.5))

    # "1" and 1 are different ids, as in COCO's own evaluation: a prediction under the other is missing
    data = json.loads(pred_json.read_text())
    data["annotations"][0]["image_id"] = 1
    pred_json.write_text(json.dumps(data))
    with pytest.raises(FrameworkError, match=f"{pred_json} has no prediction for image 'lindau_000001_000019'"):
        panoptic_quality_from_files(gt_json, tmp_path / "gt", pred_json, tmp_path / "pred")
    data["annotations"][0]["image_id"] = [1]
    pred_json.write_text(json.dumps(data))
    with pytest.raises(FrameworkError, match=r"malformed panoptic predictions .*image id \[1\]"):
        panoptic_quality_from_files(gt_json, tmp_path / "gt", pred_json, tmp_path / "pred")
