"""The files `framework predict` writes for a vision task, in its field's standard format, plus an
overlay picture per image (overlays.py) under `overlays/`:

    classification   predictions.csv: file, image_id, label_1, score_1, ... label_5, score_5
    detection        detections.json: COCO results [{image_id, category_id, bbox [x, y, w, h], score}]
                     images.json: a COCO dataset of the images (ids, files, sizes, categories), which
                     `COCO("images.json").loadRes("detections.json")` reads the results against
    instance         the same, each result with its mask as COCO RLE (`segmentation`)
    semantic         labels/<image>.png: one class label per pixel (8-bit, 16-bit above 255 classes);
                     classes.csv: label, name
    panoptic         panoptic.json (COCO panoptic: annotations with segments_info, categories) and
                     panoptic/<image>.png (segment id = R + 256 G + 256^2 B, 0 = void)

Everything is at the input image's own size and in its pixels. Category ids are the dataset's (COCO's
ids with their gaps) when the task knows them, else the labels 0..C-1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framework.training.predict import top_k_columns, write_csv
from framework.vision import overlays
from framework.vision.categories import Categories
from framework.vision.images import id_to_rgb
from framework.vision.metrics.detection import _rles, _xywh
from framework.vision.predict import ImagePrediction, predict_images
from framework.vision.sample import panoptic_to_boxes

FORMATS = ("classification", "detection", "instance", "semantic", "panoptic")


class Writer:
    """Collects one image's predictions at a time (`add`) and writes the files at the end (`finish`)."""

    def __init__(self, output: Path, categories: Categories, names: list[str]):
        self.output, self.categories, self.names = output, categories, names
        self.written: list[Path] = []
        self.images: list[dict[str, Any]] = []
        self._stems: set[str] = set()

    def stem(self, prediction: ImagePrediction) -> str:
        """The output name of an image: its file's, or with its id in front when two inputs share one."""
        stem = prediction.path.stem
        if stem in self._stems:
            stem = f"{prediction.image_id}_{stem}"
        self._stems.add(stem)
        return stem

    def add(self, prediction: ImagePrediction) -> None:
        height, width = prediction.image.shape[-2:]
        self.images.append({"id": prediction.image_id, "file_name": str(prediction.path),
                            "height": int(height), "width": int(width)})
        self.written.append(self.draw(prediction, self.output / "overlays" / f"{self.stem(prediction)}.png"))

    def draw(self, prediction: ImagePrediction, path: Path) -> Path:
        raise NotImplementedError

    def finish(self) -> list[Path]:
        return self.written

    def write_json(self, name: str, data: Any) -> None:
        path = self.output / name
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        self.written.append(path)


class ClassificationWriter(Writer):
    def __init__(self, *args: Any):
        super().__init__(*args)
        self.header: list[str] = []
        self.rows: list[list[Any]] = []

    def draw(self, prediction: ImagePrediction, path: Path) -> Path:
        self.header, (row,) = top_k_columns(prediction.probabilities[None], self.names, k=5)
        self.rows.append([str(prediction.path), prediction.image_id, *row])
        return overlays.draw_classification(prediction.image, prediction.probabilities, self.names, path)

    def finish(self) -> list[Path]:
        self.written.append(write_csv(self.output / "predictions.csv", ["file", "image_id", *self.header], self.rows))
        return self.written


class CocoResultsWriter(Writer):
    masks = False  # instance segmentation: each result also has its mask

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.results: list[dict[str, Any]] = []

    def draw(self, prediction: ImagePrediction, path: Path) -> Path:
        found = prediction.detections
        category_ids = [self.categories.category_id(label) for label in found.labels.tolist()]
        rles = _rles(found.masks) if self.masks else [None] * len(category_ids)
        for category_id, box, score, rle in zip(category_ids, _xywh(found.boxes), found.scores.tolist(), rles):
            result = {"image_id": prediction.image_id, "category_id": category_id,
                      "bbox": [round(v, 2) for v in box], "score": round(float(score), 5)}
            if rle is not None:
                result["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
            self.results.append(result)
        return overlays.draw_detections(prediction.image, found.boxes, found.labels, found.scores, self.names, path,
                                        found.masks if self.masks else None)

    def finish(self) -> list[Path]:
        self.write_json("detections.json", self.results)
        self.write_json("images.json", {"images": self.images, "annotations": [],
                                        "categories": self.categories.to_coco()})
        return self.written


class InstanceWriter(CocoResultsWriter):
    masks = True


class SemanticWriter(Writer):
    def draw(self, prediction: ImagePrediction, path: Path) -> Path:
        from PIL import Image

        labels = prediction.semantic.numpy()
        array = labels.astype(np.uint8) if len(self.names) <= 256 else labels.astype(np.uint16)
        target = self.output / "labels" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(target)
        self.written.append(target)
        return overlays.draw_label_map(prediction.image, prediction.semantic, self.names, path)

    def finish(self) -> list[Path]:
        self.written.append(write_csv(self.output / "classes.csv", ["label", "name"], list(enumerate(self.names))))
        return self.written


class PanopticWriter(Writer):
    def __init__(self, *args: Any):
        super().__init__(*args)
        self.annotations: list[dict[str, Any]] = []

    def draw(self, prediction: ImagePrediction, path: Path) -> Path:
        from PIL import Image

        segments, labels = prediction.panoptic, prediction.segment_labels.tolist()
        target = self.output / "panoptic" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(id_to_rgb(segments.numpy())).save(target)  # segment k has id k: 0 stays void
        self.written.append(target)
        areas = torch.bincount(segments.view(-1).long(), minlength=len(labels) + 1)[1:].tolist()
        boxes = _xywh(panoptic_to_boxes(segments, len(labels)))
        info = [{"id": index + 1, "category_id": self.categories.category_id(label), "area": int(area),
                 "bbox": [round(v, 2) for v in box], "iscrowd": 0, "isthing": int(self.categories.is_thing[label])}
                for index, (label, area, box) in enumerate(zip(labels, areas, boxes))]
        self.annotations.append({"image_id": prediction.image_id, "file_name": target.name, "segments_info": info})
        return overlays.draw_panoptic(prediction.image, segments, prediction.segment_labels, self.names, path)

    def finish(self) -> list[Path]:
        self.write_json("panoptic.json", {"images": self.images, "annotations": self.annotations,
                                          "categories": self.categories.to_coco()})
        return self.written


WRITERS = {"classification": ClassificationWriter, "detection": CocoResultsWriter, "instance": InstanceWriter,
           "semantic": SemanticWriter, "panoptic": PanopticWriter}


def write_predictions(model: Any, files: list[Path], output: Path, datamodule: Any) -> list[Path]:
    """Predict on `files` with `model` (a VisionTaskModel) and write its `prediction_format`'s files."""
    if model.prediction_format not in WRITERS:
        raise ValueError(f"{type(model).__name__}.prediction_format must be one of {FORMATS}, "
                         f"got {model.prediction_format!r}")
    names = [str(name) for name in model.class_names]
    categories = getattr(model, "categories", None) or getattr(datamodule, "categories", None)
    if categories is None or len(categories) != len(names):
        categories = Categories.from_names(names)
    writer = WRITERS[model.prediction_format](output, categories, names)
    for prediction in predict_images(model, files, datamodule):
        writer.add(prediction)
    return writer.finish()
