"""Panoptic quality (Kirillov et al. 2019) with COCO's rules: PQ, SQ and RQ overall, for things, for
stuff and per class.

Per image, a predicted and a ground-truth segment of the same class match when their IoU exceeds 0.5
(so a segment matches at most once). Ground-truth void pixels do not count in the union. Unmatched
non-crowd ground truth is a false negative; an unmatched prediction is a false positive unless more
than half of it lies on void or on a crowd region of its own class. Per class PQ = sum of matched IoUs /
(TP + FP/2 + FN/2) = SQ x RQ; averages are over the classes with TP + FP + FN > 0 (NaN if none).

Prediction pixels that belong to no segment (0 in the map) are ignored, as in COCO's evaluation;
torchmetrics' PanopticQuality also discounts them from unions and false negatives, which gives the same
numbers whenever every predicted pixel belongs to a segment.

Segmentations are index maps with labels (sample.py's convention): 0 = void, k = segment k-1 of
`labels`. `index_segments` (images.py) turns maps of arbitrary segment ids into this form.
All per-image counting happens in one bincount over (ground-truth segment, predicted segment) pairs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from framework.errors import FrameworkError
from framework.vision.categories import Categories
from framework.vision.metrics.base import Accumulator

_COLUMNS = ("iou", "tp", "fp", "fn")


class PanopticQuality(Accumulator):
    """Accumulates per-image (IoU sum, TP, FP, FN) per class. `per_class` adds `pq/<name>`, `sq/<name>`
    and `rq/<name>` for every class that occurred."""

    def __init__(self, categories: Categories, per_class: bool = False):
        self.categories, self.per_class = categories, per_class
        self._thing = np.array(categories.is_thing, dtype=bool)
        super().__init__()

    def update(self, pred: Tensor | np.ndarray, pred_labels: Tensor | np.ndarray,
               target: Tensor | np.ndarray, target_labels: Tensor | np.ndarray,
               target_iscrowd: Tensor | np.ndarray | None = None, image_id: Any = None,
               check: bool = True) -> None:
        """One image: index maps [H, W] (0 = void, k = segment k-1) and their segments' labels.
        `check=False` skips checking that the maps hold no value above their number of segments (maps
        made by `index_segments` cannot)."""
        self._add(image_id, image_statistics(pred, pred_labels, target, target_labels, target_iscrowd,
                                             self.categories.num_classes, check))

    def _compute(self, records: list[np.ndarray]) -> dict[str, float]:
        num_classes = self.categories.num_classes
        totals = np.zeros((num_classes, len(_COLUMNS)))
        if records:
            rows = np.concatenate(records)
            np.add.at(totals, rows[:, 0].astype(np.int64), rows[:, 1:])
        iou, tp, fp, fn = totals.T
        denominator = tp + 0.5 * fp + 0.5 * fn
        seen = denominator > 0
        sq = np.divide(iou, tp, out=np.zeros(num_classes), where=tp > 0)
        rq = np.divide(tp, denominator, out=np.zeros(num_classes), where=seen)
        pq = sq * rq
        out: dict[str, float] = {}
        for suffix, group in (("", seen), ("_things", seen & self._thing), ("_stuff", seen & ~self._thing)):
            for name, values in (("pq", pq), ("sq", sq), ("rq", rq)):
                out[name + suffix] = float(values[group].mean()) if group.any() else math.nan
        if self.per_class:
            for label in np.flatnonzero(seen):
                name = self.categories.names[label]
                out[f"pq/{name}"], out[f"sq/{name}"], out[f"rq/{name}"] = (float(pq[label]), float(sq[label]),
                                                                           float(rq[label]))
        return out


def panoptic_from_segments(segment_map: Tensor | np.ndarray, segments: list[dict[str, Any]], id_key: str = "id",
                           label_key: str = "label_id") -> tuple[np.ndarray, np.ndarray]:
    """(index map, labels) from a map of segment ids and their list of dicts, such as transformers'
    `post_process_panoptic_segmentation` output (`segmentation`, `segments_info`). Pixels whose id is
    not listed (-1 or 0 for "no segment") become void."""
    from framework.vision.images import index_segments

    ids = [int(s[id_key]) for s in segments]
    array = segment_map.detach().cpu().numpy() if isinstance(segment_map, Tensor) else np.asarray(segment_map)
    labels = np.array([int(s[label_key]) for s in segments], dtype=np.int64)
    return index_segments(array, ids, source="predicted segment map", unknown="void"), labels


def _numpy(values: Tensor | np.ndarray | None, dtype: Any) -> np.ndarray | None:
    if values is None:
        return None
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape(-1)


def _pair_counts(target: Tensor | np.ndarray, pred: Tensor | np.ndarray, n_target: int, n_pred: int,
                 check: bool = True) -> np.ndarray:
    """[n_target + 1, n_pred + 1] pixel counts of every (target value, predicted value) pair, row and
    column 0 being void. Counted where the maps are (on a GPU for a GPU model's output)."""
    if tuple(target.shape) != tuple(pred.shape):
        raise ValueError(f"prediction map {tuple(pred.shape)} and target map {tuple(target.shape)} differ in size")
    size = (n_target + 1) * (n_pred + 1)
    if isinstance(target, Tensor) or isinstance(pred, Tensor):
        target_t = torch.as_tensor(target)
        pred_t = torch.as_tensor(pred, device=target_t.device)
        for values, count in ((target_t, n_target), (pred_t, n_pred)) if check else ():
            low, high = torch.aminmax(values)
            if int(low) < 0 or int(high) > count:
                raise ValueError(f"a panoptic map holds values {int(low)}..{int(high)}, outside 0..{count} (its segments)")
        # int32 arithmetic: half the memory traffic of int64, and the largest pair index is small
        joint = target_t.reshape(-1).to(torch.int32) * (n_pred + 1) + pred_t.reshape(-1).to(torch.int32)
        counts = torch.bincount(joint, minlength=size).cpu().numpy()
    else:
        target_a, pred_a = np.asarray(target, dtype=np.int32), np.asarray(pred, dtype=np.int32)
        for values, count in ((target_a, n_target), (pred_a, n_pred)) if check else ():
            if values.size and (values.min() < 0 or values.max() > count):
                raise ValueError(f"a panoptic map holds values outside 0..{count} (its segments)")
        counts = np.bincount((target_a * (n_pred + 1) + pred_a).reshape(-1), minlength=size)
    return counts.reshape(n_target + 1, n_pred + 1).astype(np.int64)


def image_statistics(pred: Tensor | np.ndarray, pred_labels: Tensor | np.ndarray, target: Tensor | np.ndarray,
                     target_labels: Tensor | np.ndarray, target_iscrowd: Tensor | np.ndarray | None,
                     num_classes: int, check: bool = True) -> np.ndarray:
    """One image's contribution: rows (class, IoU sum, TP, FP, FN) for the classes it touches."""
    pred_labels = _numpy(pred_labels, np.int64)
    target_labels = _numpy(target_labels, np.int64)
    crowd = _numpy(target_iscrowd, bool)
    if crowd is None:
        crowd = np.zeros(len(target_labels), dtype=bool)
    for labels in (pred_labels, target_labels):
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"segment labels must lie in 0..{num_classes - 1}, got {sorted(set(labels.tolist()))}")
    counts = _pair_counts(target, pred, len(target_labels), len(pred_labels), check)
    inter = counts[1:, 1:]                       # [G, P] target segment x predicted segment
    target_area = counts[1:, :].sum(1)           # every pixel of the target segment
    pred_area = counts[:, 1:].sum(0)             # every pixel of the predicted segment
    pred_on_void = counts[0, 1:]                 # predicted pixels on target void
    union = target_area[:, None] + pred_area[None, :] - inter - pred_on_void[None, :]
    iou = inter / np.maximum(union, 1)
    same_class = target_labels[:, None] == pred_labels[None, :]
    matched = same_class & ~crowd[:, None] & (iou > 0.5)
    target_index, pred_index = np.nonzero(matched)
    target_matched = np.zeros(len(target_labels), dtype=bool)
    target_matched[target_index] = True
    pred_matched = np.zeros(len(pred_labels), dtype=bool)
    pred_matched[pred_index] = True

    missed = (target_area > 0) & ~crowd & ~target_matched
    # pixels of each prediction on crowd regions of its own class
    on_crowd = (inter * (same_class & crowd[:, None])).sum(0)
    spurious = (pred_area > 0) & ~pred_matched & ((pred_on_void + on_crowd) <= 0.5 * pred_area)

    matched_labels = target_labels[target_index]
    columns = np.stack([
        np.bincount(matched_labels, weights=iou[target_index, pred_index], minlength=num_classes),
        np.bincount(matched_labels, minlength=num_classes),
        np.bincount(pred_labels[spurious], minlength=num_classes),
        np.bincount(target_labels[missed], minlength=num_classes),
    ], axis=1).astype(np.float64)
    touched = np.flatnonzero(columns.any(1))
    return np.concatenate([touched[:, None].astype(np.float64), columns[touched]], axis=1)


def panoptic_quality_from_files(gt_json: str | Path, gt_dir: str | Path, pred_json: str | Path,
                                pred_dir: str | Path, per_class: bool = False) -> dict[str, float]:
    """PQ of COCO-format panoptic predictions (json + PNGs) against COCO-format ground truth, like COCO's
    own evaluation script. Categories come from the ground-truth json; every ground-truth image needs a
    prediction."""
    from framework.vision.coco import image_id as as_given
    from framework.vision.coco import load_json
    from framework.vision.images import index_segments, read_panoptic_png

    gt_json, pred_json = Path(gt_json), Path(pred_json)
    gt = load_json(gt_json, "panoptic ground truth")
    try:
        predictions = {as_given(a["image_id"]): a for a in _load_predictions(pred_json)}
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameworkError(f"malformed panoptic predictions {pred_json}: {exc!r}") from None
    categories = Categories.from_coco(gt["categories"], str(gt_json))
    metric = PanopticQuality(categories, per_class=per_class)
    for ann in gt["annotations"]:
        try:
            image_id = as_given(ann["image_id"])
        except (KeyError, ValueError) as exc:
            raise FrameworkError(f"malformed panoptic ground truth {gt_json}: {exc!r}") from None
        if image_id not in predictions:  # repr: the id 'abc' or 1 as the file gives it
            raise FrameworkError(f"{pred_json} has no prediction for image {image_id!r}")
        pred = predictions[image_id]
        maps, labels = [], []
        for info, folder, source in ((ann, Path(gt_dir), gt_json), (pred, Path(pred_dir), pred_json)):
            png = folder / info["file_name"]
            segments = info["segments_info"]
            try:
                maps.append(index_segments(read_panoptic_png(png), [s["id"] for s in segments], f"PNG {png}"))
                labels.append(np.array([categories.label(s["category_id"]) for s in segments], dtype=np.int64))
            except KeyError as exc:
                raise FrameworkError(f"malformed segments_info of image {image_id} in {source}: {exc!r}") from None
        crowd = np.array([bool(s.get("iscrowd", 0)) for s in ann["segments_info"]], dtype=bool)
        metric.update(maps[1], labels[1], maps[0], labels[0], crowd, image_id=image_id, check=False)
    return metric.compute(sync=False)


def _load_predictions(path: Path) -> list[dict[str, Any]]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrameworkError(f"panoptic predictions not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FrameworkError(f"cannot read panoptic predictions {path}: not valid JSON ({exc})") from None
    return data["annotations"] if isinstance(data, dict) else data
