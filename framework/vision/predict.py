"""Predictions of a vision task on image files (`framework predict`, VisionTaskModel.predict_files).

Images go through the run's evaluation transform and collate function, as in validation, and the model's
outputs through its adapter's `predictions`, the very ones the task's metric scores. Those are at the
resized, padded batch size; each is taken back to its image's own size here (maps and masks cropped to
the unpadded part and resized with nearest sampling, boxes scaled), so the written files line up with
the input images. prediction_files.py writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from framework.vision.images import read_image
from framework.vision.metrics.detection import Detections
from framework.vision.sample import Sample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
BATCH_SIZE = 8


@dataclass
class ImagePrediction:
    """One image's predictions at its own size; the ones its task does not make are None."""

    path: Path
    image_id: int
    image: Tensor                           # uint8 [3, H, W], as read
    probabilities: Tensor | None = None     # classification: [C]
    semantic: Tensor | None = None          # int64 [H, W] labels
    detections: Detections | None = None    # boxes xyxy pixels, labels, scores; masks bool [N, H, W]
    panoptic: Tensor | None = None          # int32 [H, W]: 0 = void, k = segment k-1
    segment_labels: Tensor | None = None    # int64 [S]


def image_ids(files: list[Path]) -> list[int]:
    """COCO image ids: the file names' own numbers when they all are distinct numbers (COCO's files,
    000000139.jpg, so predictions line up with its annotations), else 1..N in the order given."""
    stems = [path.stem for path in files]
    if all(stem.isdigit() for stem in stems) and len({int(stem) for stem in stems}) == len(stems):
        return [int(stem) for stem in stems]
    return list(range(1, len(files) + 1))


def _resize_map(values: Tensor, valid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """A map [..., H, W] at the batch size -> its unpadded part `valid` resized to `size`, nearest."""
    cropped = values[..., : valid[0], : valid[1]]
    if tuple(cropped.shape[-2:]) == size:
        return cropped.cpu()
    flat = cropped.reshape(-1, 1, *cropped.shape[-2:]).float()
    resized = F.interpolate(flat, size=size, mode="nearest").reshape(*cropped.shape[:-2], *size)
    return resized.to(values.dtype).cpu()


def _scale_boxes(boxes: Tensor, valid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    scale = torch.tensor([size[1] / valid[1], size[0] / valid[0]] * 2, dtype=boxes.dtype, device=boxes.device)
    return (boxes * scale).cpu()


def _at_image_size(prediction: Any, result: ImagePrediction, valid: tuple[int, int]) -> ImagePrediction:
    """`prediction` (an adapter's, for one image) back at `result.image`'s size, filled into `result`."""
    size = tuple(result.image.shape[-2:])
    if isinstance(prediction, Tensor) and prediction.dim() == 1:  # classification logits
        result.probabilities = prediction.float().softmax(-1).cpu()
    elif isinstance(prediction, Tensor):  # semantic label map
        result.semantic = _resize_map(prediction, valid, size)
    elif isinstance(prediction, Detections):
        result.detections = _detections(prediction, valid, size)
    else:  # Mask2Former's SegmentationPrediction
        if prediction.panoptic is not None:
            result.panoptic = _resize_map(prediction.panoptic, valid, size)
            result.segment_labels = prediction.segment_labels.cpu()
        if prediction.instances is not None:
            result.detections = _detections(prediction.instances, valid, size)
        if prediction.semantic is not None:
            result.semantic = _resize_map(prediction.semantic, valid, size)
    return result


def _detections(detections: Detections, valid: tuple[int, int], size: tuple[int, int]) -> Detections:
    masks = detections.masks
    if masks is not None:
        masks = _resize_map(masks.to(torch.uint8), valid, size).bool()
    return Detections(labels=detections.labels.cpu(), boxes=_scale_boxes(detections.boxes, valid, size),
                      scores=detections.scores.cpu(), masks=masks)


def predict_images(model: Any, files: list[Path], datamodule: Any,
                   batch_size: int = BATCH_SIZE) -> Iterator[ImagePrediction]:
    """Each file's predictions by `model` (a VisionTaskModel with its weights, in eval mode), in order."""
    ids = image_ids(files)
    for start in range(0, len(files), batch_size):
        chunk = list(zip(files[start: start + batch_size], ids[start: start + batch_size]))
        images = [read_image(path) for path, _ in chunk]  # a FrameworkError naming an unreadable file
        samples = [datamodule.eval_transform(Sample(image=image, image_id=image_id, orig_size=tuple(image.shape[-2:])))
                   for image, (_, image_id) in zip(images, chunk)]
        batch = datamodule.collate_fn(samples)
        batch.images, batch.pixel_mask = batch.images.to(model.device), batch.pixel_mask.to(model.device)
        outputs = model.network(**model.adapter.image_inputs(batch))
        predictions = model.adapter.predictions(outputs, batch)
        mask = batch.pixel_mask.bool()
        for index, ((path, image_id), image) in enumerate(zip(chunk, images)):
            valid = (int(mask[index].any(1).sum()), int(mask[index].any(0).sum()))
            yield _at_image_size(predictions[index], ImagePrediction(path, image_id, image), valid)
