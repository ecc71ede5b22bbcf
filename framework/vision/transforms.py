"""Transforms: the geometry of geometry.py as composable, optionally random steps, and the presets.

Each transform takes and returns a Sample. Random ones draw from an optional `torch.Generator` (the
global one when None, which the DataLoader seeds per worker and the engine per epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from framework.vision.geometry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    hflip,
    normalize,
    resize,
    resize_crop,
    shortest_edge_size,
)
from framework.vision.sample import Sample


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


class Transform:
    """A step of a pipeline: `transform(sample, generator=None) -> sample`."""

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        raise NotImplementedError


@dataclass(frozen=True)
class Compose(Transform):
    steps: tuple[Callable, ...]

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        for step in self.steps:
            sample = step(sample, generator)
        return sample


@dataclass(frozen=True)
class RandomHorizontalFlip(Transform):
    p: float = 0.5

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        return hflip(sample) if float(torch.rand((), generator=generator)) < self.p else sample


@dataclass(frozen=True)
class LargeScaleJitter(Transform):
    """Large-scale jitter (Ghiasi et al. 2021, as in detectron2's ResizeScale + FixedSizeCrop): fit the
    image into a square of side `size * s`, s ~ U(min_scale, max_scale), keeping its aspect ratio, then
    crop a random `size` x `size` window where it is larger. Smaller results are not padded here: pad
    after `Normalize` (the `train_transforms` preset does) so that padding is the mean colour."""

    size: int = 1024
    min_scale: float = 0.1
    max_scale: float = 2.0

    def params(self, height: int, width: int, generator: torch.Generator | None = None) -> tuple[int, ...]:
        """The random choice for an image of this size: (resized height, resized width, top, left,
        crop height, crop width)."""
        side = self.size * _uniform(self.min_scale, self.max_scale, generator)
        scale = min(side / height, side / width)
        new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
        crop_height, crop_width = min(new_height, self.size), min(new_width, self.size)
        top = round((new_height - crop_height) * float(torch.rand((), generator=generator)))
        left = round((new_width - crop_width) * float(torch.rand((), generator=generator)))
        return new_height, new_width, top, left, crop_height, crop_width

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        return resize_crop(sample, *self.params(*sample.size, generator))


@dataclass(frozen=True)
class ResizeShortestEdge(Transform):
    """Inference resize: shorter side `short` (800 for COCO), longer side at most `max_size` (1333).
    Several `short` values pick one at random (multi-scale training)."""

    short: int | tuple[int, ...] = 800
    max_size: int = 1333

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        short = self.short
        if isinstance(short, tuple):
            short = short[int(torch.randint(len(short), (), generator=generator))]
        return resize(sample, *shortest_edge_size(*sample.size, short, self.max_size))


@dataclass(frozen=True)
class Resize(Transform):
    height: int
    width: int

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        return resize(sample, self.height, self.width)


@dataclass(frozen=True)
class Normalize(Transform):
    """Normalise; with `pad_to`, pad to that size in the same pass (see `normalize`)."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    pad_to: tuple[int, int] | None = None

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        return normalize(sample, self.mean, self.std, self.pad_to)


def train_transforms(size: int = 1024, min_scale: float = 0.1, max_scale: float = 2.0, flip: bool = True,
                     mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> Compose:
    """The COCO panoptic training recipe: flip, large-scale jitter 0.1-2.0, a `size` square crop, padded."""
    steps = [RandomHorizontalFlip()] if flip else []
    steps += [LargeScaleJitter(size, min_scale, max_scale), Normalize(mean, std, pad_to=(size, size))]
    return Compose(tuple(steps))


def eval_transforms(short: int = 800, max_size: int = 1333,
                    mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> Compose:
    """The COCO inference recipe: shorter side 800, longer side at most 1333. Batch with Collate, which
    pads each batch to its largest image."""
    return Compose((ResizeShortestEdge(short, max_size), Normalize(mean, std)))
