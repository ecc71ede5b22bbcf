"""Detection operations in plain PyTorch (no torchvision): the parts two-stage detectors share.

    boxes.py      box areas, IoU, clipping to the image, the box coder (encode / decode deltas)
    nms.py        non-maximum suppression, exact and vectorised; per-class (batched) NMS
    roi_align.py  RoIAlign (aligned=True semantics) over one or several feature levels
    anchors.py    anchors per feature level; matching anchors/proposals to ground truth; sampling

Every operation runs on any device and is differentiable where the original is (RoIAlign through
grid_sample). Importing this package imports torch only.
"""

from framework.vision.ops.anchors import AnchorGenerator, Matcher, sample_labels
from framework.vision.ops.boxes import (
           BoxCoder,
           box_area,
           box_iou,
           clip_boxes,
           remove_small_boxes,
)
from framework.vision.ops.nms import batched_nms, nms
from framework.vision.ops.roi_align import multiscale_roi_align, roi_align

__all__ = ["AnchorGenerator", "BoxCoder", "Matcher", "batched_nms", "box_area", "box_iou", "clip_boxes",
           "multiscale_roi_align", "nms", "remove_small_boxes", "roi_align", "sample_labels"]
