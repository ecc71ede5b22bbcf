"""COCO average precision of boxes and instance masks, computed by COCO's own evaluator.

The numbers are pycocotools' COCOeval's (or faster-coco-eval's, when it is installed: the same
algorithm in C++, with identical numbers): AP over IoU 0.50:0.95, AP50, AP75 and AP for small /
medium / large objects, with at most 100 detections per image. COCO reports -1 where a number is
undefined (no ground truth of that size); here that is NaN.

Ground truth comes with each update (tensors in pixels of the evaluated image) or from a COCO
instances json (`ground_truth=`), which evaluates against the original annotations exactly; the
predictions must then be in the original image's pixels (a Sample's `orig_size`).

Mask AP uses mask areas for the small / medium / large split and box AP box areas, as COCO's
evaluation of result files does when each result carries only what its IoU type needs.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from framework.errors import FrameworkError
from framework.vision.categories import Categories
from framework.vision.metrics.base import Accumulator

IOU_TYPES = {"bbox": "bbox", "segm": "mask"}  # COCO's name -> our key prefix
_STATS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")  # COCOeval.stats[0:6]


@dataclass
class Detections:
    """Objects of one image. Predictions need `scores`; ground truth may flag `iscrowd`. Boxes are xyxy
    pixels, masks bool [N, H, W] at the image's size. A Sample can stand in for ground truth: it has
    the same fields."""

    labels: Tensor
    boxes: Tensor | None = None
    scores: Tensor | None = None
    masks: Tensor | None = None
    iscrowd: Tensor | None = None

    @classmethod
    def from_sample(cls, sample: Any, things_only: Tensor | None = None) -> Detections:
        """A Sample's objects as ground truth, crowd regions included (flagged): instance masks, or one
        mask per segment of a panoptic map (`things_only`, bool [C] from `Categories.thing_mask()`,
        keeps thing classes: AP of a panoptic model is scored on things)."""
        from framework.vision.targets import present_objects

        keep = present_objects(sample)
        if things_only is not None:
            keep &= things_only[sample.labels]
        if sample.masks is not None:
            masks = sample.masks[keep]
        elif sample.panoptic is not None:
            values = torch.nonzero(keep).view(-1, 1, 1).to(sample.panoptic.dtype) + 1
            masks = sample.panoptic.unsqueeze(0) == values
        else:
            masks = None
        boxes = sample.boxes[keep] if sample.boxes is not None else None
        if boxes is None and masks is not None:
            from framework.vision.sample import masks_to_boxes

            boxes = masks_to_boxes(masks)
        return cls(labels=sample.labels[keep], boxes=boxes, masks=masks, iscrowd=sample.iscrowd[keep])


def coco_backend(name: str = "auto") -> tuple[Any, Any]:
    """(COCO, COCOeval) classes: faster-coco-eval's when installed (or asked for), else pycocotools'."""
    if name in ("auto", "faster_coco_eval"):
        try:
            from faster_coco_eval import COCO, COCOeval_faster

            return COCO, COCOeval_faster
        except ImportError:
            if name == "faster_coco_eval":
                raise FrameworkError("faster-coco-eval is not installed: pip install faster-coco-eval") from None
    if name not in ("auto", "pycocotools", "faster_coco_eval"):
        raise FrameworkError(f"unknown COCO evaluation backend '{name}' (known: auto, pycocotools, faster_coco_eval)")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval


def _rles(masks: Tensor) -> list[dict[str, Any]]:
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    array = masks.detach().to("cpu", torch.uint8).permute(1, 2, 0).numpy()
    return mask_utils.encode(np.asfortranarray(array))


def _xywh(boxes: Tensor) -> list[list[float]]:
    b = boxes.detach().to("cpu", torch.float64)
    return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], dim=1).tolist()


class CocoAP(Accumulator):
    """Box AP (`iou_types` "bbox") and/or mask AP ("segm"): keys bbox_ap, bbox_ap50, bbox_ap75,
    bbox_ap_small, bbox_ap_medium, bbox_ap_large and the same with mask_. Labels are contiguous labels
    mapped through `categories` to category ids (needed with `ground_truth`; without categories a
    label is its own category id)."""

    def __init__(self, iou_types: tuple[str, ...] = ("bbox",), categories: Categories | None = None,
                 ground_truth: str | Path | None = None, backend: str = "auto"):
        unknown = set(iou_types) - set(IOU_TYPES)
        if unknown or not iou_types:
            raise ValueError(f"iou_types must be some of {list(IOU_TYPES)}, got {list(iou_types)}")
        self.iou_types, self.backend = tuple(iou_types), backend
        self._gt_dataset: dict[str, Any] | None = None
        if ground_truth is not None:
            from framework.vision.coco import load_json

            self._gt_dataset = load_json(Path(ground_truth), "COCO instances annotations")
            categories = categories or Categories.from_coco(self._gt_dataset["categories"], str(ground_truth))
            self._image_sizes = {int(im["id"]): (int(im["height"]), int(im["width"]))
                                 for im in self._gt_dataset["images"]}
        self.categories = categories
        super().__init__()

    def _category_ids(self, labels: Tensor) -> list[int]:
        labels = labels.detach().cpu().tolist()
        return [self.categories.category_id(l) for l in labels] if self.categories else [int(l) for l in labels]

    def update(self, preds: Detections, target: Detections | Any | None = None, image_id: int | None = None,
               image_size: tuple[int, int] | None = None) -> None:
        """One image. Without `ground_truth`, pass `target` and the image's (height, width) unless masks
        show it; with it, pass the image id that the json uses."""
        if self._gt_dataset is not None:
            if image_id is None or int(image_id) not in self._image_sizes:
                raise FrameworkError(f"image id {image_id} is not in the ground-truth annotations")
            image_size = self._image_sizes[int(image_id)]
        elif target is None:
            raise ValueError("CocoAP without ground_truth= needs the target of each image")
        if image_size is None:
            masks = preds.masks if preds.masks is not None else getattr(target, "masks", None)
            if masks is None:
                raise ValueError("pass image_size=(height, width): neither predictions nor target have masks")
            image_size = (int(masks.shape[-2]), int(masks.shape[-1]))
        image_size = tuple(int(s) for s in image_size)
        if preds.masks is not None and tuple(preds.masks.shape[-2:]) != image_size:
            raise ValueError(f"predicted masks are {tuple(preds.masks.shape[-2:])} but image {image_id} is {image_size}: "
                             "resize predictions to the evaluated image (a Sample's orig_size for ground_truth=)")
        record = {"size": image_size, "dets": self._detections(preds)}
        if self._gt_dataset is None:
            record["gts"] = self._ground_truth(target)
        self._add(image_id, record)

    def _detections(self, preds: Detections) -> list[dict[str, Any]]:
        if preds.scores is None:
            raise ValueError("predictions need scores")
        out = [{"category_id": c, "score": float(s)}
               for c, s in zip(self._category_ids(preds.labels), preds.scores.detach().cpu().tolist())]
        if "bbox" in self.iou_types:
            if preds.boxes is None:
                raise ValueError("box AP needs predicted boxes")
            for det, box in zip(out, _xywh(preds.boxes)):
                det["bbox"] = box
        if "segm" in self.iou_types:
            if preds.masks is None:
                raise ValueError("mask AP needs predicted masks")
            for det, rle in zip(out, _rles(preds.masks)):
                det["segmentation"] = rle
        return out

    def _ground_truth(self, target: Any) -> list[dict[str, Any]]:
        from pycocotools import mask as mask_utils

        labels, masks, boxes = target.labels, getattr(target, "masks", None), getattr(target, "boxes", None)
        crowd = getattr(target, "iscrowd", None)
        crowd = [False] * len(labels) if crowd is None else crowd.detach().cpu().tolist()
        rles = _rles(masks) if masks is not None else None
        if boxes is None:
            if rles is None:
                raise ValueError("the target needs boxes or masks")
            xywh = [list(map(float, b)) for b in mask_utils.toBbox(rles)] if rles else []
        else:
            xywh = _xywh(boxes)
        out = []
        for i, category_id in enumerate(self._category_ids(labels)):
            # COCO's annotation area is the mask's when there is one, for box AP too
            area = float(mask_utils.area(rles[i])) if rles is not None else xywh[i][2] * xywh[i][3]
            ann = {"category_id": category_id, "bbox": xywh[i], "area": area, "iscrowd": int(bool(crowd[i]))}
            if rles is not None:
                ann["segmentation"] = rles[i]
            out.append(ann)
        if "segm" in self.iou_types and rles is None:
            raise ValueError("mask AP needs target masks")
        return out

    def _compute(self, records: list[dict[str, Any]]) -> dict[str, float]:
        coco_class, eval_class = coco_backend(self.backend)
        images, gts, dets = [], [], []
        for image_id, record in _with_ids(records):
            images.append({"id": image_id, "height": record["size"][0], "width": record["size"][1]})
            dets += [{**d, "image_id": image_id} for d in record["dets"]]
            gts += [{**g, "image_id": image_id} for g in record.get("gts", [])]
        if self._gt_dataset is not None:
            gt_dataset = self._gt_dataset
        else:
            category_ids = self.categories.ids if self.categories else sorted({a["category_id"] for a in gts + dets})
            gt_dataset = {"images": images, "annotations": [{**g, "id": i + 1} for i, g in enumerate(gts)],
                          "categories": [{"id": c} for c in category_ids]}
        out: dict[str, float] = {}
        for iou_type in self.iou_types:
            stats = _evaluate(coco_class, eval_class, gt_dataset, _results(dets, iou_type), iou_type,
                              [im["id"] for im in images])
            prefix = IOU_TYPES[iou_type]
            for name, value in zip(_STATS, stats):
                out[f"{prefix}_{name}"] = math.nan if value < 0 else float(value)
        return out

    def _add(self, image_id: Any, record: Any) -> None:
        record["image_id"] = None if image_id is None else int(image_id)
        super()._add(image_id, record)


def _with_ids(records: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Each record with its image id; records without one get ids above every real one."""
    taken = [r["image_id"] for r in records if r["image_id"] is not None]
    next_id = max(taken, default=0) + 1
    out = []
    for record in records:
        if record["image_id"] is None:
            out.append((next_id, record))
            next_id += 1
        else:
            out.append((record["image_id"], record))
    return out


def _results(dets: list[dict[str, Any]], iou_type: str) -> list[dict[str, Any]]:
    """What COCO.loadRes makes of a result list of one IoU type: ids from 1, iscrowd 0, the area of the
    box (bbox) or of the mask (segm), and a mask result's box from its mask."""
    from pycocotools import mask as mask_utils

    out = []
    for i, det in enumerate(dets):
        ann = {"id": i + 1, "image_id": det["image_id"], "category_id": det["category_id"], "score": det["score"],
               "iscrowd": 0}
        if iou_type == "bbox":
            x, y, w, h = det["bbox"]
            ann.update(bbox=[x, y, w, h], area=w * h, segmentation=[[x, y, x, y + h, x + w, y + h, x + w, y]])
        else:
            rle = det["segmentation"]
            ann.update(segmentation=rle, area=float(mask_utils.area(rle)), bbox=list(mask_utils.toBbox(rle)))
        out.append(ann)
    return out


def _evaluate(coco_class: Any, eval_class: Any, gt_dataset: dict[str, Any], results: list[dict[str, Any]],
              iou_type: str, image_ids: list[int]) -> list[float]:
    if not image_ids:
        return [-1.0] * len(_STATS)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = coco_class()
        gt.dataset = gt_dataset
        gt.createIndex()
        dt = coco_class()
        dt.dataset = {"images": gt_dataset["images"], "categories": gt_dataset["categories"], "annotations": results}
        dt.createIndex()
        evaluator = eval_class(gt, dt, iou_type)
        if eval_class.__module__.startswith("faster_coco_eval"):
            evaluator.print_function = lambda *args, **kwargs: None
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats[: len(_STATS)]]
