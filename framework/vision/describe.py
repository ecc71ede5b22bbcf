"""What a vision task's configuration trains, in one line: `framework run` prints it first, so that
nobody takes the bundled tiny default for the real benchmark.

    coco_panoptic: mask2former tiny preset (0.37 M params, random init) on the bundled synthetic scenes (128 px, upscaled to 1024 px crops)
    coco_panoptic: mask2former-swin-tiny preset (47.4 M params; swin backbone from /models/swin-t, the rest random init) on COCO-format data at /data/coco (1024 px crops)

Everything comes from the task config: `task.model.name` (a preset, or a whole pretrained model),
`task.model.backbone` and `task.data_dir` (null: the bundled synthetic data). The parameter count is
that of the model the run builds, with the data's classes, counted on the meta device (no weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from framework.errors import FrameworkError
from framework.vision.models import AUTO_CLASSES, label_kwargs, preset_config, presets


def _meta_model(kind: str, name: str, class_names: list[str], plugin_paths: list[str]) -> Any:
    """The model `name` names, built on the meta device: a preset's config (built-in or a model
    plugin's), or a whole model's saved config.json (a folder, or a hub id in the local Hugging Face
    cache); None when neither is at hand."""
    import torch
    import transformers

    with torch.device("meta"):
        config = preset_config(kind, name, label_kwargs(class_names), plugin_paths)
        if config is not None:
            return getattr(transformers, AUTO_CLASSES[kind]).from_config(config)
        from framework.vision.model_plugins import register_for_folder

        register_for_folder(name, plugin_paths)
        try:
            config = transformers.AutoConfig.from_pretrained(name, local_files_only=True, **label_kwargs(class_names))
        except (OSError, ValueError):
            return None
        return getattr(transformers, AUTO_CLASSES[kind]).from_config(config)


def model_text(kind: str, model: Any, class_names: Callable[[], list[str]], plugin_paths: list[str] = ()) -> str:
    """'mask2former tiny preset (0.37 M params, random init)' for the `task.model` section `model`."""
    name, backbone = str(model.name), model.get("backbone")
    try:
        built = _meta_model(kind, name, list(class_names()), plugin_paths)
    except FrameworkError:  # the data is missing: the run reports that itself
        built = None
    config = getattr(built, "config", None)
    is_preset = name in presets(kind, plugin_paths)
    if config is None and is_preset:  # no data to count the head by: the family still shows
        config = preset_config(kind, name, label_kwargs(["unknown"]), plugin_paths)
    family = getattr(config, "model_type", None) or kind
    count = f"{sum(p.numel() for p in built.parameters()) / 1e6:.3g} M params" if built is not None else "params unknown"
    if not is_preset:
        return f"{family} from {name} ({count}, pretrained)"
    if not name.replace("_", "-").startswith(family.replace("_", "-")):
        name = f"{family} {name}"  # "mask2former tiny", but not "detr detr-r50"
    if backbone:
        return f"{name} preset ({count}; backbone from {backbone}, the rest random init)"
    return f"{name} preset ({count}, random init)"


def data_text(task: Any) -> str:
    """'the bundled synthetic scenes (128 px, upscaled to 1024 px crops)' or the real data's folder."""
    train_size = task.get("crop_size", task.get("image_size"))
    if task.data_dir is None:
        what = "shapes" if "crop_size" not in task else "scenes"
        size = int(task.bundled_image_size)
        scaled = "" if train_size is None or int(train_size) == size else \
            f", {'upscaled' if int(train_size) > size else 'downscaled'} to {int(train_size)} px {'crops' if 'crop_size' in task else 'inputs'}"
        return f"the bundled synthetic {what} ({size} px{scaled})"
    dataset = {"ade20k": "ADE20K"}.get(str(task.get("dataset", "")), "COCO-format" if "crop_size" in task else "class-folder")
    return f"{dataset} data at {Path(str(task.data_dir)).expanduser()} ({train_size} px {'crops' if 'crop_size' in task else 'inputs'})"


def describe_run(config: Any, kind: str, class_names: Callable[[], list[str]]) -> str:
    """The line `framework run` prints for a vision task's configuration (module docstring)."""
    task = config.task
    paths = list(config.engine.get("plugin_paths") or [])
    return f"{task.name}: {model_text(kind, task.model, class_names, paths)} on {data_text(task)}"
