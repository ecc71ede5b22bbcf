# python -m pytest tests/test_vision_metrics.py
"""Box / mask AP against pycocotools' COCOeval run on json files, semantic IoU against torchmetrics,
and the accumulator contract: merging states, counting a repeated image once, and gathering across two
real processes with torch.distributed."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from framework.vision.categories import Categories
from framework.vision.metrics import CocoAP, Detections, PanopticQuality, SemanticIoU

HEIGHT, WIDTH = 48, 64


def box_masks(boxes: torch.Tensor) -> torch.Tensor:
    masks = torch.zeros(len(boxes), HEIGHT, WIDTH, dtype=torch.bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.round().long().tolist()):
        mask[y0:y1, x0:x1] = True
    return masks


def random_image(generator: torch.Generator, with_crowd: bool = True):
    """Ground truth (boxes, labels, crowd flags) and predictions (jittered copies, misses, false alarms)."""
    count = int(torch.randint(0, 6, (), generator=generator))
    xy = torch.rand(count, 2, generator=generator) * torch.tensor([WIDTH - 12, HEIGHT - 12])
    wh = 2 + torch.rand(count, 2, generator=generator) * 30
    boxes = torch.cat([xy, torch.minimum(xy + wh, torch.tensor([WIDTH, HEIGHT]))], 1).round()
    labels = torch.randint(0, 3, (count,), generator=generator)
    crowd = (torch.rand(count, generator=generator) < 0.15) if with_crowd else torch.zeros(count, dtype=torch.bool)
    keep = torch.rand(count, generator=generator) > 0.2
    pred_boxes = (boxes[keep] + torch.randn(int(keep.sum()), 4, generator=generator) * 2).clamp(min=0)
    pred_boxes = torch.minimum(pred_boxes, torch.tensor([WIDTH, HEIGHT, WIDTH, HEIGHT], dtype=torch.float32))
    pred_labels = labels[keep].clone()
    extra = int(torch.randint(0, 3, (), generator=generator))
    extra_xy = torch.rand(extra, 2, generator=generator) * 40
    pred_boxes = torch.cat([pred_boxes, torch.cat([extra_xy, extra_xy + 8], 1)]).round()
    pred_labels = torch.cat([pred_labels, torch.randint(0, 3, (extra,), generator=generator)])
    flips = torch.rand(len(pred_labels), generator=generator) < 0.15
    pred_labels[flips] = (pred_labels[flips] + 1) % 3
    ok = (pred_boxes[:, 2] > pred_boxes[:, 0]) & (pred_boxes[:, 3] > pred_boxes[:, 1])
    pred_boxes, pred_labels = pred_boxes[ok], pred_labels[ok]
    scores = torch.rand(len(pred_labels), generator=generator)
    return (Detections(labels, boxes, None, box_masks(boxes), crowd),
            Detections(pred_labels, pred_boxes, scores, box_masks(pred_boxes)))


def reference_stats(tmp_path, images, category_ids, iou_type):
    """COCOeval as a user runs it: ground truth and results written as json files, loaded by COCO."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(mask):
        encoded = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
        return {"size": encoded["size"], "counts": encoded["counts"].decode()}

    annotations, results = [], []
    for image_id, (target, pred) in images.items():
        for box, label, crowd, mask in zip(target.boxes.tolist(), target.labels.tolist(), target.iscrowd.tolist(), target.masks):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[label],
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                "area": int(mask.sum()), "iscrowd": int(crowd), "segmentation": rle(mask)})
        for box, label, score, mask in zip(pred.boxes.tolist(), pred.labels.tolist(), pred.scores.tolist(), pred.masks):
            result = {"image_id": image_id, "category_id": category_ids[label], "score": score}
            if iou_type == "bbox":
                result["bbox"] = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
            else:
                result["segmentation"] = rle(mask)
            results.append(result)
    gt_file, results_file = tmp_path / f"gt_{iou_type}.json", tmp_path / f"results_{iou_type}.json"
    gt_file.write_text(json.dumps({
        "images": [{"id": i, "height": HEIGHT, "width": WIDTH} for i in images],
        "annotations": annotations, "categories": [{"id": c} for c in category_ids]}))
    results_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_file))
        evaluator = COCOeval(coco, coco.loadRes(str(results_file)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [math.nan if v < 0 else v for v in evaluator.stats[:6]]


@pytest.mark.parametrize("seed", range(3))
def test_box_and_mask_ap_equal_cocoeval_on_the_same_predictions(tmp_path, seed):
    generator = torch.Generator().manual_seed(seed)
    categories = Categories((5, 11, 17), ("a", "b", "c"), (True, True, True))
    images = {100 + i: random_image(generator) for i in range(12)}
    metric = CocoAP(("bbox", "segm"), categories, backend="pycocotools")
    for image_id, (target, pred) in images.items():
        metric.update(pred, target, image_id=image_id)
    out = metric.compute()
    for iou_type, prefix in (("bbox", "bbox"), ("segm", "mask")):
        expected = reference_stats(tmp_path, images, categories.ids, iou_type)
        got = [out[f"{prefix}_{k}"] for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")]
        assert got == pytest.approx(expected, abs=1e-12, nan_ok=True)
    assert 0.0 < out["bbox_ap50"] < 1.0  # a real case: neither trivial nor empty


def test_ap_against_an_annotation_file(tmp_path):
    """Ground truth from an instances json (the synthetic one), predictions from its own masks, some
    dropped and some mislabelled: the same numbers as COCOeval on that file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from framework.vision.coco import CocoInstances, instances_file
    from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco

    root = prepare_synthetic_coco(SyntheticCocoSpec(height=48, width=48, train=0, val=10, test=0), tmp_path)
    dataset = CocoInstances(root, "val")
    metric = CocoAP(("bbox", "segm"), ground_truth=instances_file(root, "val"), backend="pycocotools")
    generator = torch.Generator().manual_seed(0)
    results = {"bbox": [], "segm": []}
    from pycocotools import mask as mask_utils

    for index in range(len(dataset)):
        sample = dataset[index]
        keep = ~sample.iscrowd & (torch.rand(len(sample.labels), generator=generator) > 0.2)
        labels = sample.labels[keep] % len(dataset.categories)
        labels[torch.rand(len(labels), generator=generator) < 0.2] = 0
        scores = torch.rand(len(labels), generator=generator)
        preds = Detections(labels, sample.boxes[keep], scores, sample.masks[keep])
        metric.update(preds, image_id=sample.image_id)
        for box, label, score, mask in zip(preds.boxes.tolist(), labels.tolist(), scores.tolist(), preds.masks):
            category_id = dataset.categories.category_id(label)
            results["bbox"].append({"image_id": sample.image_id, "category_id": category_id, "score": score,
                                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
            rle = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
            results["segm"].append({"image_id": sample.image_id, "category_id": category_id, "score": score,
                                    "segmentation": rle})
    out = metric.compute()
    for iou_type, prefix in (("bbox", "bbox"), ("segm", "mask")):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(instances_file(root, "val")))
            evaluator = COCOeval(coco, coco.loadRes(results[iou_type]), iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        expected = [math.nan if v < 0 else v for v in evaluator.stats[:6]]
        got = [out[f"{prefix}_{k}"] for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")]
        assert got == pytest.approx(expected, abs=1e-12, nan_ok=True)
    assert 0.3 < out["mask_ap"] < 1.0


def test_faster_coco_eval_gives_the_same_numbers():
    pytest.importorskip("faster_coco_eval")
    generator = torch.Generator().manual_seed(7)
    images = [random_image(generator) for _ in range(12)]
    outputs = []
    for backend in ("pycocotools", "faster_coco_eval"):
        metric = CocoAP(("bbox", "segm"), backend=backend)
        for image_id, (target, pred) in enumerate(images):
            metric.update(pred, target, image_id=image_id)
        outputs.append(metric.compute())
    assert outputs[0] == pytest.approx(outputs[1], abs=1e-12, nan_ok=True)


def test_ap_of_no_predictions_is_zero_and_of_no_images_undefined():
    generator = torch.Generator().manual_seed(1)
    target, _ = random_image(generator, with_crowd=False)
    while len(target.labels) == 0:
        target, _ = random_image(generator, with_crowd=False)
    metric = CocoAP(("bbox",))
    empty = Detections(torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4), torch.zeros(0))
    metric.update(empty, target, image_id=1, image_size=(HEIGHT, WIDTH))
    assert metric.compute()["bbox_ap"] == 0.0
    assert math.isnan(CocoAP(("bbox",)).compute()["bbox_ap"])


@pytest.mark.parametrize("seed", range(5))
def test_semantic_iou_equals_torchmetrics(seed):
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    generator = torch.Generator().manual_seed(seed)
    classes = 6
    metric = SemanticIoU(classes)
    jaccard = MulticlassJaccardIndex(classes, average="macro", ignore_index=255)
    accuracy = MulticlassAccuracy(classes, average="micro", ignore_index=255)
    class_accuracy = MulticlassAccuracy(classes, average="macro", ignore_index=255)
    for _ in range(4):
        target = torch.randint(0, classes - 1, (2, 20, 24), generator=generator)  # the last class never occurs
        target[torch.rand(target.shape, generator=generator) < 0.1] = 255
        pred = torch.where(torch.rand(target.shape, generator=generator) < 0.7, target.clamp(max=classes - 2),
                           torch.randint(0, classes - 1, target.shape, generator=generator))
        metric.update(pred, target)
        for reference in (jaccard, accuracy, class_accuracy):
            reference.update(pred, target)
    out = metric.compute()
    assert out["miou"] == pytest.approx(float(jaccard.compute()), abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(float(accuracy.compute()), abs=1e-6)
    assert out["mean_accuracy"] == pytest.approx(float(class_accuracy.compute()), abs=1e-6)


def test_semantic_iou_by_hand():
    metric = SemanticIoU(3, class_names=["a", "b", "c"])
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2]])
    metric.update(pred, target)
    out = metric.compute()
    # a: TP 1, FP 1, FN 1 -> 1/3; b: TP 2, FP 1 -> 2/3; c: TP 1, FN 1 -> 1/2 (ignored pixels do not count)
    assert out["iou/a"] == pytest.approx(1 / 3) and out["iou/b"] == pytest.approx(2 / 3)
    assert out["iou/c"] == pytest.approx(1 / 2) and out["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert out["pixel_accuracy"] == pytest.approx(4 / 6)


def semantic_batches(seed: int):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (6, 10, 12), generator=generator)
    pred = torch.where(torch.rand(target.shape, generator=generator) < 0.6, target,
                       torch.randint(0, 4, target.shape, generator=generator))
    return pred, target


def test_merged_states_count_a_repeated_image_once():
    pred, target = semantic_batches(0)
    whole = SemanticIoU(4)
    whole.update(pred, target, image_ids=list(range(6)))
    first, second = SemanticIoU(4), SemanticIoU(4)
    first.update(pred[:4], target[:4], image_ids=[0, 1, 2, 3])
    second.update(pred[3:], target[3:], image_ids=[3, 4, 5])  # image 3 twice, as a padded sampler does
    first.merge(second.state())
    assert len(first) == 6 and first.compute() == whole.compute()
    anonymous = SemanticIoU(4)
    anonymous.update(pred[:4], target[:4])
    anonymous.update(pred[3:], target[3:])
    assert len(anonymous) == 7  # without ids nothing can be recognised as a repeat
    whole.reset()
    assert len(whole) == 0 and math.isnan(whole.compute()["miou"])


def _distributed_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    pred, target = semantic_batches(0)
    semantic = SemanticIoU(4)
    panoptic = PanopticQuality(Categories.from_names(["a", "b", "c", "d"], [True, True, False, False]))
    ap = CocoAP(("bbox",))
    generator = torch.Generator().manual_seed(3)
    ap_images = [random_image(generator) for _ in range(6)]
    # rank 0 takes images 0-3, rank 1 images 3-5: image 3 is seen twice, as DistributedSampler pads
    indices = [0, 1, 2, 3] if rank == 0 else [3, 4, 5]
    semantic.update(pred[indices], target[indices], image_ids=indices)
    for i in indices:
        panoptic.update(pred[i].to(torch.int32), torch.tensor([0, 1, 2, 3]), target[i].to(torch.int32),
                        torch.tensor([0, 1, 2, 3]), image_id=i)
        ap.update(ap_images[i][1], ap_images[i][0], image_id=i, image_size=(HEIGHT, WIDTH))
    result = {"semantic": semantic.compute(), "panoptic": panoptic.compute(), "ap": ap.compute()}
    with open(f"{out_file}.{rank}", "w") as handle:
        json.dump(result, handle)
    dist.destroy_process_group()


def test_compute_gathers_every_process_with_torch_distributed(tmp_path):
    mp.start_processes(_distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2,
                       start_method="fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pred, target = semantic_batches(0)
    semantic = SemanticIoU(4)
    semantic.update(pred, target, image_ids=list(range(6)))
    panoptic = PanopticQuality(Categories.from_names(["a", "b", "c", "d"], [True, True, False, False]))
    ap = CocoAP(("bbox",))
    generator = torch.Generator().manual_seed(3)
    ap_images = [random_image(generator) for _ in range(6)]
    for i in range(6):
        panoptic.update(pred[i].to(torch.int32), torch.tensor([0, 1, 2, 3]), target[i].to(torch.int32),
                        torch.tensor([0, 1, 2, 3]), image_id=i)
        ap.update(ap_images[i][1], ap_images[i][0], image_id=i, image_size=(HEIGHT, WIDTH))
    expected = {"semantic": semantic.compute(), "panoptic": panoptic.compute(), "ap": ap.compute()}
    for rank in range(2):
        got = json.loads((tmp_path / f"out.{rank}").read_text())
        for name in expected:
            assert got[name] == pytest.approx(expected[name], abs=1e-12, nan_ok=True), (rank, name)


def test_perfect_predictions_of_a_panoptic_sample_score_one(tmp_path):
    """The adapters' path: ground truth from a panoptic Sample (crowds flagged), predictions as a model's
    post-processing gives them (segment ids with a list of dicts, -1 where no segment)."""
    from framework.vision.coco import CocoPanoptic
    from framework.vision.metrics.panoptic import panoptic_from_segments
    from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco

    root = prepare_synthetic_coco(SyntheticCocoSpec(height=96, width=96, train=0, val=8, test=0, crowd_fraction=0.9),
                                  tmp_path)
    dataset = CocoPanoptic(root, "val")
    things = dataset.categories.thing_mask()
    ap = CocoAP(("bbox", "segm"), dataset.categories)
    pq = PanopticQuality(dataset.categories)
    crowds = 0
    for index in range(len(dataset)):
        sample = dataset[index]
        target = Detections.from_sample(sample, things_only=things)
        crowds += int(target.iscrowd.sum())
        real = ~target.iscrowd
        ap.update(Detections(target.labels[real], target.boxes[real], torch.ones(int(real.sum())), target.masks[real]),
                  target, image_id=sample.image_id)
        # transformers-style output: ids 10, 20, ... per segment, -1 on void and crowd pixels
        keep = ~sample.iscrowd
        ids = torch.tensor([10 * (k + 1) if keep[k] else -1 for k in range(len(sample.labels))])
        segmentation = torch.where(sample.panoptic > 0, ids[(sample.panoptic - 1).clamp(min=0).long()], -1)
        info = [{"id": int(ids[k]), "label_id": int(sample.labels[k])} for k in range(len(ids)) if keep[k]]
        pred_map, pred_labels = panoptic_from_segments(segmentation, info)
        pq.update(pred_map, pred_labels, sample.panoptic, sample.labels, sample.iscrowd, image_id=sample.image_id)
    assert crowds > 0
    out = ap.compute()
    assert out["bbox_ap"] == out["mask_ap"] == out["mask_ap50"] == 1.0
    assert pq.compute()["pq"] == 1.0
