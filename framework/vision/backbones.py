"""A pretrained ImageNet backbone put into a preset (`task.model.backbone`), the rest of the model random.

    load_backbone(model, "/models/swin-tiny", "mask2former-swin-tiny")   # a save_pretrained folder
    load_backbone(model, "microsoft/swin-tiny-patch4-window7-224", ...)  # a hub id, from the local cache only

The folder holds a transformers ResNet, Swin, ConvNeXt, ViT (or MiT) model or image classifier. Its
weights are matched by name to the preset's backbone: the first submodule whose config is of the same
model type (Mask2Former's Swin encoder, DETR's ResNet, UperNet's ConvNeXt, the classifier's ViT). Every
backbone tensor must come from the folder with its shape; the folder may hold what a backbone does
not use (the classifier, the final norm and pooler of an ImageNet model), and the backbone may have
what an ImageNet model has not (the per-stage output norms of transformers' backbones: random).
Anything else is a different architecture and one line naming the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from framework.errors import FrameworkError

# tensors of an ImageNet model that a backbone never uses: its classifier's input norm and pooling
_UNUSED_BY_BACKBONES = ("pooler.", "layernorm.", "classifier.")
# tensors of a transformers backbone that an ImageNet model has not: per-stage output norms
_NEW_IN_BACKBONES = ("hidden_states_norms.",)
_DETR_FAMILY = ("detr", "conditional_detr", "deformable_detr")


def _source_model(source: str) -> Any:
    """The ImageNet model at `source` (a folder, or a hub id already in the local HF cache)."""
    from transformers import AutoModel

    path = Path(source).expanduser()
    local = source.startswith((".", "/", "~")) or path.exists()
    if local and not (path / "config.json").is_file():
        raise FrameworkError(f"task.model.backbone: backbone folder not found: looked for {path / 'config.json'} "
                             f"(a save_pretrained folder)")
    from transformers.utils import logging as hf_logging

    # transformers lists the classifier tensors a base model leaves unused; load_backbone's own check
    # says what matters (whether the backbone's tensors are all there), so its report is silenced
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # local_files_only: a hub id is taken from the cache or refused, never downloaded
        return AutoModel.from_pretrained(str(path) if local else source, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = str(path) if local else f"'{source}' (not a folder; looked in the local Hugging Face cache only)"
        raise FrameworkError(f"task.model.backbone {where}: cannot load a backbone: {first}") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _target(model: nn.Module, model_type: str, weights: dict) -> tuple[str, nn.Module]:
    """The submodule of `model` (not the model itself) that is a transformers model of `model_type` and
    shares the most tensor names with `weights` (transformers' Swin backbone wraps a SwinModel, whose
    names are an ImageNet Swin's); the outermost of equals. ("", model) when there is none."""
    from transformers import PreTrainedModel

    best, found = -1, ("", model)
    for name, module in model.named_modules():
        if name and isinstance(module, PreTrainedModel) and module.config.model_type == model_type:
            shared = sum(key in weights for key in module.state_dict())
            if shared > best:
                best, found = shared, (name, module)
    return found


def _mismatch(source: dict, target: dict) -> str:
    """What keeps `source`'s tensors from filling `target`'s, or "" when they fit."""
    shapes = [k for k in target if k in source and source[k].shape != target[k].shape]
    missing = [k for k in target if k not in source and not k.startswith(_NEW_IN_BACKBONES)]
    extra = [k for k in source if k not in target and not k.startswith(_UNUSED_BY_BACKBONES)
             and not k.endswith("num_batches_tracked")]
    if shapes:
        k = shapes[0]
        return (f"{len(shapes)} tensors differ in shape, first {k}: {tuple(source[k].shape)} in the folder, "
                f"{tuple(target[k].shape)} in the model")
    if missing:
        return f"{len(missing)} backbone tensors are not in the folder (first: {missing[0]}); are the depths the same?"
    if extra:
        return f"{len(extra)} of the folder's tensors have no place in the backbone (first: {extra[0]}); are the depths the same?"
    return ""


def load_backbone(model: nn.Module, source: str, preset: str) -> str:
    """Copy the ImageNet backbone at `source` into `model`'s backbone; the name of that submodule."""
    pretrained = _source_model(source)
    model_type = pretrained.config.model_type
    weights = pretrained.state_dict()
    name, target = _target(model, model_type, weights)
    if not name:
        kinds = sorted({getattr(getattr(m, "config", None), "model_type", "") for n, m in model.named_modules() if n} - {""})
        raise FrameworkError(f"task.model.backbone {source}: a {model_type} model, but {preset} has no {model_type} "
                             f"backbone (its parts: {', '.join(kinds) or 'none'})")
    own = target.state_dict()
    problem = _mismatch(weights, own)
    if problem:
        raise FrameworkError(f"task.model.backbone {source}: this {model_type} does not fit {preset}'s backbone: {problem}")
    target.load_state_dict({k: weights[k] for k in own if k in weights}, strict=False)
    return name


def set_detr_backbone_training(model: nn.Module, pretrained: bool) -> None:
    """Which ResNet stages of a DETR-family model train.

    transformers freezes its transformers-ResNet backbone by names that never match ("stage.1" against
    "encoder.stages.1"), which leaves the whole backbone frozen. The papers' rule is meant: a pretrained
    ResNet trains stages 2-4 and keeps its stem and first stage frozen (DETR, torchvision's layer2-4);
    a random one trains everything (frozen random features would only handicap it).
    """
    if getattr(model.config, "model_type", "") not in _DETR_FAMILY:
        return
    for name, parameter in model.named_parameters():
        if ".backbone." in name:
            frozen = pretrained and (".embedder." in name or ".encoder.stages.0." in name)
            parameter.requires_grad_(not frozen)
