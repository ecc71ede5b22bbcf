"""Adapters: one per model family, one interface for every vision task (base.py).

An adapter turns a Batch (framework/vision/sample.py) into the keyword arguments of a Hugging Face model,
and the model's outputs into what the task's metric takes, so a task changes model by config alone.

    base.py            Adapter interface and `adapter_for(model)`: the adapter of a model's family
    classification.py  any AutoModelForImageClassification (ViT, ResNet, ConvNeXt, ...): logits
    semantic.py        SegFormer, UperNet: per-pixel label maps at the image's size
    detr.py            DETR, Conditional DETR, Deformable DETR, RT-DETR: boxes, labels, scores
    mask2former.py     Mask2Former: panoptic maps, instance masks and semantic maps from one model

Importing this package imports no model library; adapter_for imports the family's module on demand.
"""

from framework.vision.adapters.base import Adapter, adapter_for

__all__ = ["Adapter", "adapter_for"]
