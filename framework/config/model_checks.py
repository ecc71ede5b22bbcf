"""What a model plugin's default.yaml must say (models/<name>/default.yaml), checked without importing it.

    model:
      name: mask_rcnn                 # the folder name
      model_type: mask_rcnn           # the autotype key: configuration.py's model_type, written in config.json
      auto_classes: {object_detection: MaskRCNNForObjectDetection}   # task kind -> class in modeling.py
      adapter: adapter:MaskRCNNAdapter   # optional: module:Class in the folder, or a built-in adapter family
      backbone: backbone.body         # optional: the submodule trained at task.model.backbone_lr_multiplier
      default_preset: mask_rcnn-tiny  # optional: what task.model.name=<name> builds (else the first preset)
      presets: {mask_rcnn-tiny: {...}}   # optional: preset name -> keyword arguments of the config class

The engine side that imports and registers a model plugin is framework/vision/model_plugins.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The vision task kinds (VisionTaskModel.kind) and the transformers Auto class that builds each one's models.
TASK_KINDS = {
    "classification": "AutoModelForImageClassification",
    "semantic_segmentation": "AutoModelForSemanticSegmentation",
    "object_detection": "AutoModelForObjectDetection",
    "universal_segmentation": "AutoModelForUniversalSegmentation",  # Mask2Former: panoptic and instance
}
MODEL_KEYS = ("name", "model_type", "auto_classes", "adapter", "backbone", "default_preset", "presets")


def model_problem(path: Path, defaults: dict[str, Any]) -> str | None:
    """The first thing wrong with a model plugin's default.yaml (as one line naming the file), or None."""
    where = path / "default.yaml"
    model = defaults.get("model")
    if set(defaults) != {"model"} or not isinstance(model, dict):
        return f"{where}: expected one section, model: (name, model_type, auto_classes, ...)"
    unknown = sorted(set(model) - set(MODEL_KEYS))
    if unknown:
        return f"{where}: unknown key model.{unknown[0]} (known: {', '.join(MODEL_KEYS)})"
    if model.get("name") != path.name:
        return f"{where}: model.name is {model.get('name')!r} but must equal the folder name {path.name!r}"
    if not isinstance(model.get("model_type"), str) or not model["model_type"]:
        return f"{where}: model.model_type must name configuration.py's model_type (the autotype key in config.json)"
    classes = model.get("auto_classes")
    if not isinstance(classes, dict) or not classes:
        return f"{where}: model.auto_classes must map task kinds ({', '.join(TASK_KINDS)}) to classes in modeling.py"
    strange = [kind for kind in classes if kind not in TASK_KINDS]
    if strange:
        return f"{where}: model.auto_classes: unknown task kind '{strange[0]}' (known: {', '.join(TASK_KINDS)})"
    presets = model.get("presets") or {}
    if not isinstance(presets, dict) or any(not isinstance(v, dict) for v in presets.values()):
        return f"{where}: model.presets must map preset names to keyword arguments of the config class"
    default = model.get("default_preset")
    if default is not None and default not in presets:
        return f"{where}: model.default_preset '{default}' is not one of model.presets ({', '.join(presets) or 'none'})"
    return None


def model_import_problem(path: Path, settings: dict[str, Any], modeling: Any, configuration: Any) -> str | None:
    """After importing a model plugin (`framework models --check`): what its modules lack that
    default.yaml promises, as one line, or None. The same rules as its registration at run time."""
    model_type = settings["model_type"]
    configs = [v for v in vars(configuration).values() if isinstance(v, type) and getattr(v, "model_type", None) == model_type]
    if not configs:
        return f"{path / 'configuration.py'}: no config class with model_type = '{model_type}' (default.yaml model.model_type)"
    for kind, class_name in settings["auto_classes"].items():
        model_class = getattr(modeling, class_name, None)
        if model_class is None:
            return f"{path / 'modeling.py'}: no class {class_name} (default.yaml model.auto_classes.{kind})"
        if getattr(model_class, "config_class", None) not in configs:
            return f"{path / 'modeling.py'}: {class_name}.config_class must be configuration.{configs[0].__name__}"
    return None
