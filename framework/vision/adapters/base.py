"""The adapter interface shared by the vision tasks, and the lookup of a model's adapter by family (or
the adapter a model plugin names in its default.yaml: framework/vision/model_plugins.py)."""

from __future__ import annotations

import importlib
from typing import Any

from torch import Tensor, nn

from framework.errors import FrameworkError
from framework.vision.collate import Batch


class Adapter:
    """Batch -> model inputs, model outputs -> metric inputs, for one model family.

    `inputs(batch)` returns the model's keyword arguments, targets included (Hugging Face models compute
    their loss when given labels), so `model(**adapter.inputs(batch)).loss` is the training loss.
    `predictions(outputs, batch)` returns one prediction per image of the batch, in the form the task's
    metric takes (logits, label maps or Detections), at the batch's padded image size.
    """

    def inputs(self, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError

    def image_inputs(self, batch: Batch) -> dict[str, Any]:
        """The model's keyword arguments without targets, for prediction on images that have none
        (`framework predict`); `predictions` takes the outputs as it takes those of `inputs`."""
        return {"pixel_values": batch.images}

    def loss(self, outputs: Any) -> Tensor:
        if getattr(outputs, "loss", None) is None:
            raise FrameworkError(f"{type(self).__name__}: the model returned no loss; were the targets passed?")
        return outputs.loss

    def predictions(self, outputs: Any, batch: Batch) -> list[Any] | Tensor:
        raise NotImplementedError


# model_type (the config's) -> "module:Class" in this package; a new family is one line here
_FAMILIES = {
    "classification": "classification:ClassificationAdapter",
    "segformer": "semantic:SemanticAdapter",
    "upernet": "semantic:SemanticAdapter",
    "detr": "detr:DetrAdapter",
    "conditional_detr": "detr:DetrAdapter",
    "deformable_detr": "detr:DetrAdapter",
    "rt_detr": "detr:DetrAdapter",
    "mask2former": "mask2former:Mask2FormerAdapter",
}


def adapter_for(model: nn.Module, kind: str | None = None, **options: Any) -> Adapter:
    """The adapter of `model`'s family: its config's model_type, or `kind` ("classification" for any
    image classifier, whose inputs and outputs do not depend on the architecture). `options` go to the
    adapter's constructor (e.g. Mask2Former's `outputs`)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    key = kind if kind in _FAMILIES else model_type
    if key not in _FAMILIES:
        from framework.vision.model_plugins import adapter_class

        plugin_adapter = adapter_class(str(model_type))  # a model plugin's own adapter, or a family it reuses
        if isinstance(plugin_adapter, type):
            return plugin_adapter(model, **options)
        key = plugin_adapter or key
    if key not in _FAMILIES:
        raise FrameworkError(f"no vision adapter for model type '{model_type}' (known: {', '.join(sorted(_FAMILIES))})")
    module, cls = _FAMILIES[key].split(":")
    return getattr(importlib.import_module(f"framework.vision.adapters.{module}"), cls)(model, **options)
