"""Geometry on Samples in torch: resize, crop, flip, pad, normalise an image and all of its targets
together (torchvision is not used). Deterministic functions; transforms.py wraps them as (random)
transforms.

Geometry: pixel centres sit at half-integers. Resizing maps output pixel x to input x' = (x + 0.5) *
in/out; images are resampled bilinearly around x' (antialiased when shrinking), maps and masks take
the input pixel that contains x' (nearest), and box edges scale by out/in. So a box, a mask and the
image stay on the same pixels through any chain of transforms. Objects (with masks or boxes) that
leave the image are dropped; panoptic maps keep their object list (an object cropped away just has no
pixel left). Where a sample has instance masks, its boxes are the masks' tight boxes, recomputed by
every transform: over several resizes a nearest-sampled mask and a scaled box would drift apart by up
to a pixel per step, and the mask is what the image shows.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from framework.vision.sample import IGNORE_LABEL, Sample, masks_to_boxes

# ImageNet statistics in [0, 1] units: what the pretrained backbones of the vision tasks were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _nearest_index(out_size: int, in_size: int, start: int = 0, count: int | None = None) -> Tensor:
    """Input pixel of each output pixel start..start+count of a resize from in_size to out_size."""
    count = out_size - start if count is None else count
    centres = torch.arange(start, start + count, dtype=torch.float64) + 0.5
    return (centres * (in_size / out_size)).floor().clamp_(0, in_size - 1).to(torch.int64)


def _resize_image(image: Tensor, height: int, width: int, top: int, left: int, crop_height: int,
                  crop_width: int) -> Tensor:
    """The window (top, left, crop_height, crop_width) of the image resized to (height, width)."""
    in_height, in_width = image.shape[-2:]
    if (in_height, in_width) == (height, width):
        return image[:, top : top + crop_height, left : left + crop_width]
    # uint8 stays uint8 (torch resamples bytes directly on the CPU, about 4x faster than float).
    # Antialiasing only changes shrinking; enlarging gives the same bytes without it, about 10% sooner.
    if height < in_height or width < in_width or crop_height <= 0 or crop_width <= 0:
        resized = F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=True,
                                align_corners=False)[0]
        return resized[:, top : top + crop_height, left : left + crop_width]
    # Enlarging: resample only the source window that the kept rows and columns read (large-scale
    # jitter enlarges up to 3.2x, and most of the output is then cropped away). See `_source_window`.
    first_row, stop_row, row0, row1 = _source_window(in_height, height, top, crop_height)
    first_col, stop_col, col0, col1 = _source_window(in_width, width, left, crop_width)
    window = image[None, :, row0:row1, col0:col1]
    # the scale passed explicitly: output pixel i of the window sits where output pixel first + i of
    # the whole resize does, bytes for bytes (F.interpolate would derive the scale from the sizes)
    resized = torch.ops.aten.upsample_bilinear2d.default(
        window, [stop_row - first_row, stop_col - first_col], False, height / in_height, width / in_width)[0]
    top, left = top - first_row, left - first_col
    return resized[:, top : top + crop_height, left : left + crop_width]


def _source_window(in_size: int, out_size: int, start: int, count: int) -> tuple[int, int, int, int]:
    """(first, stop, begin, end): resizing the input pixels begin..end-1 alone to stop - first pixels,
    with the scale out_size / in_size, gives output pixels first..stop-1 of the whole resize, which hold
    start..start+count-1 (for an enlarging bilinear resize).

    Output pixel t reads input pixels lo(t) and lo(t)+1, lo(t) = floor((t + 0.5) in/out - 0.5) (clamped
    to the image). A window that starts at input pixel `begin` lines up with the whole resize only where
    begin = first * in/out exactly, i.e. at outputs `first` that are multiples of out/gcd(in, out);
    the last such multiple whose window still holds lo(start) is taken (0 if none: the window then
    starts at the image's edge). The window ends after lo(last) + 1, where the whole resize's
    clamping at the image's far edge is the same. Torch copies a window whose size is the output's
    without resampling it (whatever the scale), so then one more pixel is taken on either side.
    """
    def lo(t: int) -> int:
        return ((2 * t + 1) * in_size - out_size) // (2 * out_size)

    step = out_size // math.gcd(in_size, out_size)
    needed = max(lo(start), 0)
    first = (start // step) * step
    while first * in_size // out_size > needed:
        first -= step
    begin, end, stop = first * in_size // out_size, min(in_size, lo(start + count - 1) + 2), start + count
    if end - begin == stop - first and in_size != out_size:
        if end < in_size:
            end += 1
        else:  # then stop < out_size: were both at the far edge, in/out = (end - begin)/(stop - first) = 1
            stop += 1
    return first, stop, begin, end


def resize_crop(sample: Sample, height: int, width: int, top: int = 0, left: int = 0,
                crop_height: int | None = None, crop_width: int | None = None) -> Sample:
    """Resize to (height, width), then keep the window (top, left, crop_height, crop_width).

    Maps and masks are resampled only inside the window: with large-scale jitter the resized image can
    be four times the crop, and gathering just the window's pixels is exact for nearest sampling.
    """
    in_height, in_width = sample.size
    crop_height = height - top if crop_height is None else crop_height
    crop_width = width - left if crop_width is None else crop_width
    rows = _nearest_index(height, in_height, top, crop_height)
    cols = _nearest_index(width, in_width, left, crop_width)
    changes = {}
    if sample.image is not None:
        changes["image"] = _resize_image(sample.image, height, width, top, left, crop_height, crop_width)
    for name in ("panoptic", "semantic", "valid", "masks"):
        value = getattr(sample, name)
        if value is not None:
            changes[name] = _gather(value, rows, cols)
    out = sample.replace(**changes)
    if sample.boxes is not None and sample.masks is None:
        scale = torch.tensor([width / in_width, height / in_height] * 2, dtype=torch.float32)
        boxes = sample.boxes * scale - torch.tensor([left, top, left, top], dtype=torch.float32)
        out = out.replace(boxes=boxes)
    return _prune(out, crop_height, crop_width)


def _gather(value: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """value[..., rows, :][..., cols]: a map or masks resampled by nearest index.

    The axis that grows least goes first, so the elementwise column gather touches as few pixels as it
    can (columns first when enlarging: on the source rows, not the output rows; copying whole rows
    is cheap either way). On the CPU numpy's `take` does it, about twice as fast as `index_select`.
    """
    columns_first = value.shape[-2] * len(cols) <= len(rows) * value.shape[-1]
    if value.device.type == "cpu":
        array = value.numpy()
        rows_np, cols_np = rows.numpy(), cols.numpy()
        if columns_first:
            out = np.take(np.take(array, cols_np, axis=-1), rows_np, axis=-2)
        else:
            out = np.take(np.take(array, rows_np, axis=-2), cols_np, axis=-1)
        return torch.from_numpy(out)
    rows, cols = rows.to(value.device), cols.to(value.device)
    if columns_first:
        return value.index_select(-1, cols).index_select(-2, rows)
    return value.index_select(-2, rows).index_select(-1, cols)


def _prune(sample: Sample, height: int, width: int) -> Sample:
    """Drop objects that have left the image (no mask pixel, or an empty box) and fit the boxes: the
    masks' tight boxes where there are masks, else the boxes clipped to the image."""
    if sample.masks is not None:
        keep = sample.masks.flatten(1).any(1)
        return sample.replace(boxes=masks_to_boxes(sample.masks)).select(keep)
    if sample.boxes is not None:
        limits = torch.tensor([width, height, width, height], dtype=torch.float32)
        boxes = torch.minimum(sample.boxes.clamp(min=0.0), limits)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return sample.replace(boxes=boxes).select(keep)
    return sample


def resize(sample: Sample, height: int, width: int) -> Sample:
    return resize_crop(sample, height, width)


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """The window (top, left, height, width); it must lie inside the image."""
    in_height, in_width = sample.size
    if top < 0 or left < 0 or top + height > in_height or left + width > in_width:
        raise ValueError(f"crop window {(top, left, height, width)} is outside the {in_height}x{in_width} image")
    return resize_crop(sample, in_height, in_width, top, left, height, width)


def hflip(sample: Sample) -> Sample:
    changes = {}
    for name in ("image", "panoptic", "semantic", "valid", "masks"):
        value = getattr(sample, name)
        if value is not None:
            changes[name] = value.flip(-1)
    if sample.boxes is not None:
        width = sample.size[1]
        x0, y0, x1, y1 = sample.boxes.unbind(1)
        changes["boxes"] = torch.stack([width - x1, y0, width - x0, y1], dim=1)
    return sample.replace(**changes)


def pad(sample: Sample, height: int, width: int) -> Sample:
    """Pad at the bottom and right to (height, width): image 0, masks False, panoptic void, semantic
    IGNORE_LABEL; `valid` marks the original pixels. Padding after `normalize` makes the padding the
    dataset's mean colour."""
    in_height, in_width = sample.size
    if (height, width) == (in_height, in_width) and sample.valid is not None:
        return sample
    sample = _pad_targets(sample, in_height, in_width, height, width)
    if sample.image is not None:
        sample.image = _padded(sample.image, height, width, 0)
    return sample


def _pad_targets(sample: Sample, in_height: int, in_width: int, height: int, width: int) -> Sample:
    """`pad` of everything but the image (a new Sample; the image is left as it is)."""
    if height < in_height or width < in_width:
        raise ValueError(f"cannot pad a {in_height}x{in_width} sample to the smaller {height}x{width}")
    if sample.valid is not None:
        valid = _padded(sample.valid, height, width, False)
    else:
        valid = torch.zeros(height, width, dtype=torch.bool)
        valid[:in_height, :in_width] = True
    changes = {"valid": valid}
    if sample.masks is not None:
        changes["masks"] = _padded(sample.masks, height, width, False)
    if sample.panoptic is not None:
        changes["panoptic"] = _padded(sample.panoptic, height, width, 0)
    if sample.semantic is not None:
        changes["semantic"] = _padded(sample.semantic, height, width, IGNORE_LABEL)
    return sample.replace(**changes)


def _padded(value: Tensor, height: int, width: int, fill) -> Tensor:
    """`value` [..., h, w] at the top left of a [..., height, width] tensor filled with `fill`: every
    byte written once (F.pad fills the whole output, then copies over it)."""
    in_height, in_width = value.shape[-2:]
    out = value.new_empty(*value.shape[:-2], height, width)
    out[..., :in_height, :in_width] = value
    out[..., in_height:, :] = fill
    out[..., :in_height, in_width:] = fill
    return out


def normalize(sample: Sample, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
              pad_to: tuple[int, int] | None = None) -> Sample:
    """uint8 [0, 255] image -> float32 (x / 255 - mean) / std, per channel. With `pad_to`, then `pad` to
    that size in the same pass: the image is written straight into the canvas, whose padding is 0."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    # x * (1 / (255 std)) - mean / std: a conversion, then one multiply and one add in place, each a
    # plain float32 pass (a fused addcmul from the bytes took twice as long in a measurement)
    shift, scale = -mean_t / std_t, 1.0 / (255.0 * std_t)
    image = sample.image
    if pad_to is None:
        out = torch.empty(image.shape, dtype=torch.float32, device=image.device)
        out.copy_(image)
        return sample.replace(image=out.mul_(scale.to(out.device)).add_(shift.to(out.device)))
    channels, height, width = image.shape
    padded = _pad_targets(sample, height, width, *pad_to)
    # the image is written straight into the canvas; only the padding is zeroed (a zeroed canvas
    # would write every byte twice)
    canvas = torch.empty(channels, *pad_to, dtype=torch.float32, device=image.device)
    window = canvas[:, :height, :width]
    window.copy_(image)
    window.mul_(scale.to(canvas.device)).add_(shift.to(canvas.device))
    canvas[:, height:, :] = 0.0
    canvas[:, :height, width:] = 0.0
    padded.image = canvas
    return padded


def shortest_edge_size(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    """The size with the shorter side `short`, shrunk further if the longer side would pass `max_size`."""
    scale = short / min(height, width)
    if max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
