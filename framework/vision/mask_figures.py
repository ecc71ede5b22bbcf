"""A picture of a segmentation model's test predictions: a few test images, each beside its ground-truth
label map and the predicted one (TaskModel.save_figure puts it in the run directory; `framework plot`
and `framework report` show it).

The first `count` test images are kept, in the test set's order, so the pictures of two runs (two
optimizers) show the same images.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from framework.vision.overlays import colour
from framework.vision.sample import IGNORE_LABEL


class MaskSamples:
    """The first `count` (image, target, prediction) triples of an evaluation, cropped to the image
    (batches are padded), on the CPU."""

    def __init__(self, count: int = 4):
        self.count = count
        self.samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, images: Tensor, pixel_mask: Tensor, targets: Tensor, predictions: Tensor) -> None:
        for index in range(min(len(images), self.count - len(self.samples))):
            valid = pixel_mask[index]
            height, width = int(valid.any(1).sum()), int(valid.any(0).sum())
            self.samples.append((_displayable(images[index, :, :height, :width]),
                                 targets[index, :height, :width].cpu().numpy(),
                                 predictions[index, :height, :width].cpu().numpy()))


def _displayable(image: Tensor) -> np.ndarray:
    """[H, W, 3] in [0, 1]: the normalised image stretched to its own range (which model statistics
    normalised it does not matter to a person looking at it)."""
    pixels = image.detach().float().cpu().permute(1, 2, 0).numpy()
    low, high = pixels.min(), pixels.max()
    return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)


def label_colours(labels: np.ndarray) -> np.ndarray:
    """[H, W, 3] in [0, 1]: each class in overlays.colour's colour (the colours of `framework predict`),
    black where nothing is scored."""
    rgb = np.zeros((*labels.shape, 3))
    for label in np.unique(labels):
        if label != IGNORE_LABEL:
            rgb[labels == label] = np.array(colour(int(label))) / 255
    return rgb


def masks_figure(samples: MaskSamples, names: list[str]):
    """A matplotlib Figure, one row per kept image: the image, the ground truth and the prediction, with
    a legend of the classes that appear."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = max(1, len(samples.samples))
    fig = Figure(figsize=(7.5, 2.4 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False)
    present: set[int] = set()
    for row, (image, target, prediction) in enumerate(samples.samples):
        for ax, picture, title in zip(axes[row], (image, label_colours(target), label_colours(prediction)),
                                      ("image", "ground truth", "prediction")):
            ax.imshow(picture, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
        present |= {int(v) for v in np.unique(np.concatenate([target.ravel(), prediction.ravel()]))}
    legend = [Patch(color=np.array(colour(label)) / 255, label=names[label] if label < len(names) else str(label))
              for label in sorted(present - {IGNORE_LABEL})]
    if legend:
        fig.legend(handles=legend, loc="outside lower center", ncols=min(6, len(legend)), fontsize=8)
    return fig
