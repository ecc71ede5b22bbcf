"""Test helper: the bundled models/mask_rcnn/ plugin imported and built without the engine's loader
(until the model registry lands, which will import and register plugins itself): its folder as the
package `mask_rcnn_plugin_under_test`, its config and models registered with transformers' Auto classes,
and a preset of its default.yaml built with a task's class names."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent.parent / "models" / "mask_rcnn"
PACKAGE = "mask_rcnn_plugin_under_test"
AUTO_CLASSES = {"object_detection": "AutoModelForObjectDetection",
                "universal_segmentation": "AutoModelForUniversalSegmentation"}


def plugin() -> ModuleType:
    """The folder as a package (imported once), registered with the Auto classes."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    import transformers

    spec = importlib.util.spec_from_file_location(PACKAGE, FOLDER / "__init__.py", submodule_search_locations=[str(FOLDER)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    configuration = importlib.import_module(f"{PACKAGE}.configuration")
    modeling = importlib.import_module(f"{PACKAGE}.modeling")
    settings = defaults()
    transformers.AutoConfig.register(settings["model_type"], configuration.MaskRCNNConfig, exist_ok=True)
    for kind, name in settings["auto_classes"].items():
        getattr(transformers, AUTO_CLASSES[kind]).register(configuration.MaskRCNNConfig, getattr(modeling, name),
                                                           exist_ok=True)
    return package


def defaults() -> dict[str, Any]:
    return yaml.safe_load((FOLDER / "default.yaml").read_text(encoding="utf-8"))["model"]


def build(kind: str, preset: str, class_names: list[str]) -> Any:
    """A preset of default.yaml with random weights, built through the Auto class of `kind`."""
    import transformers

    plugin()
    configuration = importlib.import_module(f"{PACKAGE}.configuration")
    labels = {"num_labels": len(class_names), "id2label": dict(enumerate(class_names)),
              "label2id": {name: i for i, name in enumerate(class_names)}}
    config = configuration.MaskRCNNConfig(**defaults()["presets"][preset], **labels)
    return getattr(transformers, AUTO_CLASSES[kind]).from_config(config)


def adapter(model: Any, **options: Any) -> Any:
    module, name = defaults()["adapter"].split(":")
    plugin()
    return getattr(importlib.import_module(f"{PACKAGE}.{module}"), name)(model, **options)
