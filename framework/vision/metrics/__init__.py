"""Vision metrics as accumulators (reset / update / compute -> flat dict of floats), mergeable across
processes: see base.py (MetricSet scores several together).

    detection.py   CocoAP: box and mask AP through COCO's evaluator
    panoptic.py    PanopticQuality: PQ / SQ / RQ overall, things, stuff, per class
    semantic.py    SemanticIoU: mIoU, pixel accuracy, mean class accuracy
"""

from framework.vision.metrics.base import MetricSet
from framework.vision.metrics.detection import CocoAP, Detections
from framework.vision.metrics.panoptic import PanopticQuality, panoptic_quality_from_files
from framework.vision.metrics.semantic import SemanticIoU

__all__ = ["CocoAP", "Detections", "MetricSet", "PanopticQuality", "SemanticIoU", "panoptic_quality_from_files"]
