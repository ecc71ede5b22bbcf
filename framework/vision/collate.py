"""Batches of samples: Collate pads them to one size and stacks the images (Batch).

Separate from sample.py so that padding (geometry.py, which works on Samples) and the Sample itself
import in one direction: sample <- geometry <- collate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from framework.vision.geometry import pad
from framework.vision.sample import Sample


@dataclass
class Batch:
    """Samples padded to one size: `images` [B, 3, H, W], `pixel_mask` [B, H, W] (True on image pixels),
    `targets` the samples themselves without their image, their maps and masks padded to (H, W)."""

    images: Tensor
    pixel_mask: Tensor
    targets: list[Sample]

    def __len__(self) -> int:
        return len(self.targets)

    def pin_memory(self) -> Batch:
        """What DataLoader(pin_memory=True) calls: page-locked tensors copy to a GPU without blocking.
        (Moving a Batch to a device needs nothing of ours: Lightning moves dataclasses field by field.)"""
        def pin(sample: Sample) -> Sample:
            return sample.replace(**{f.name: getattr(sample, f.name).pin_memory() for f in dataclasses.fields(sample)
                                     if isinstance(getattr(sample, f.name), Tensor)})

        return Batch(self.images.pin_memory(), self.pixel_mask.pin_memory(), [pin(s) for s in self.targets])


@dataclass(frozen=True)
class Collate:
    """DataLoader `collate_fn`: pads every sample to the batch's largest height and width, rounded up to
    a multiple of `size_divisor` (backbones with stride 32 want this), or to `size` when given."""

    size_divisor: int = 32
    size: tuple[int, int] | None = None

    def __call__(self, samples: list[Sample]) -> Batch:
        if self.size is not None:
            height, width = self.size
        else:
            height = max(s.size[0] for s in samples)
            width = max(s.size[1] for s in samples)
            height = -(-height // self.size_divisor) * self.size_divisor
            width = -(-width // self.size_divisor) * self.size_divisor
        padded = [pad(s, height, width) for s in samples]
        images = torch.stack([s.image for s in padded])
        pixel_mask = torch.stack([s.valid for s in padded])
        return Batch(images, pixel_mask, [s.replace(image=None) for s in padded])
