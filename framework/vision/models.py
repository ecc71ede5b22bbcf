"""Vision models by name: a Hugging Face hub id or a local folder (loaded with `from_pretrained`), or a
named random-init preset: `tiny` (a few hundred thousand parameters, for CPU runs and tests) or a
real-size architecture (`mask2former-swin-tiny`, `detr-r50`, `vit-b16`, ...: architectures.py), whose
backbone may come pretrained from an ImageNet model (`backbone=`, backbones.py).

    model, pretrained = load_model("semantic_segmentation", "tiny", class_names)
    model, pretrained = load_model("semantic_segmentation", "nvidia/mit-b0", class_names)   # hub id
    model, pretrained = load_model("semantic_segmentation", "/models/my_segformer", class_names)
    model, pretrained = load_model("universal_segmentation", "mask2former-swin-tiny", class_names,
                                   backbone="/models/swin-tiny")   # ImageNet Swin-T, random head

Either way the classification head gets one output per class of the task's data (a pretrained head of
another size is replaced, with a warning from transformers). `backbone_prefix(model)` names the
pretrained feature extractor, which tasks train at a learning-rate multiplier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from framework.config.model_checks import TASK_KINDS
from framework.errors import FrameworkError
from framework.vision.architectures import ARCHITECTURES
from framework.vision.backbones import load_backbone, set_detr_backbone_training

# task kind -> the Auto class that builds and loads its models
AUTO_CLASSES = TASK_KINDS


def _tiny_resnet(**extra: Any) -> Any:
    from transformers import ResNetConfig

    return ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                        layer_type="basic", **extra)


def _vit(labels: dict[str, Any]) -> Any:
    from transformers import ViTConfig

    # 64x64 images in 8x8 patches: 64 tokens, small enough for a CPU step in tens of milliseconds
    return ViTConfig(image_size=64, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, **labels)


def _resnet(labels: dict[str, Any]) -> Any:
    return _tiny_resnet(**labels)


def _segformer(labels: dict[str, Any]) -> Any:
    from transformers import SegformerConfig

    # the MiT-b0 layout (4 stages, strides 4-32) with one block per stage and narrower widths
    return SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], num_attention_heads=[1, 1, 2, 4],
                           decoder_hidden_size=64, semantic_loss_ignore_index=255, **labels)


def _upernet(labels: dict[str, Any]) -> Any:
    from transformers import UperNetConfig

    backbone = _tiny_resnet(out_features=["stage1", "stage2", "stage3", "stage4"])
    return UperNetConfig(backbone_config=backbone, hidden_size=64, auxiliary_in_channels=64,
                         auxiliary_channels=32, use_auxiliary_head=True, loss_ignore_index=255, **labels)


def _detr_common(labels: dict[str, Any]) -> dict[str, Any]:
    # one encoder and two decoder layers of width 64 over 20 queries: a bundled scene has at most 6 things
    return dict(d_model=64, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
                encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20, **labels)


def _detr(labels: dict[str, Any]) -> Any:
    from transformers import DetrConfig

    # a transformers ResNet backbone (DETR's default is a timm one)
    return DetrConfig(backbone_config=_tiny_resnet(out_features=["stage4"]), **_detr_common(labels))


def _conditional_detr(labels: dict[str, Any]) -> Any:
    from transformers import ConditionalDetrConfig

    return ConditionalDetrConfig(backbone_config=_tiny_resnet(out_features=["stage4"]), **_detr_common(labels))


def _deformable_detr(labels: dict[str, Any]) -> Any:
    from transformers import DeformableDetrConfig

    # three feature levels (strides 8-32) and two sampling points: the multi-scale attention runs in
    # plain PyTorch on CPU
    return DeformableDetrConfig(backbone_config=_tiny_resnet(out_features=["stage2", "stage3", "stage4"]),
                                num_feature_levels=3, encoder_n_points=2, decoder_n_points=2, **_detr_common(labels))


def _rt_detr(labels: dict[str, Any]) -> Any:
    from transformers import RTDetrConfig, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])
    common = _detr_common(labels)
    return RTDetrConfig(backbone_config=backbone, encoder_hidden_dim=64, encoder_in_channels=[32, 64, 128],
                        feat_strides=[8, 16, 32], decoder_in_channels=[64, 64, 64], num_feature_levels=3,
                        decoder_n_points=2, num_denoising=20, **common)


def _mask2former(labels: dict[str, Any]) -> Any:
    from transformers import Mask2FormerConfig, SwinConfig

    # Swin (Mask2Former's own backbone family) with one block per stage and 4x4 windows: a 128x128 image
    # gives 32, 16, 8 and 4 pixel-square stages. Three decoder layers over 20 queries (a bundled scene
    # has at most 6 things and 3 stuff segments). The loss samples 1024 points per mask, the pixel count
    # of the 1/4-scale mask logits of a 128x128 image (Mask2Former: 12544 = 112^2 on 1024 crops).
    backbone = SwinConfig(image_size=128, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4],
                          window_size=4, drop_path_rate=0.0, out_features=["stage1", "stage2", "stage3", "stage4"])
    return Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                             encoder_feedforward_dim=64, encoder_layers=1, decoder_layers=3, num_attention_heads=2,
                             dim_feedforward=64, num_queries=20, train_num_points=1024, **labels)


# (task kind, preset name) -> config builder; "tiny" is each task's default family
PRESETS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("classification", "tiny"): _vit,
    ("classification", "vit-tiny"): _vit,
    ("classification", "resnet-tiny"): _resnet,
    ("semantic_segmentation", "tiny"): _segformer,
    ("semantic_segmentation", "segformer-tiny"): _segformer,
    ("semantic_segmentation", "upernet-tiny"): _upernet,
    ("object_detection", "tiny"): _deformable_detr,
    ("object_detection", "detr-tiny"): _detr,
    ("object_detection", "conditional_detr-tiny"): _conditional_detr,
    ("object_detection", "deformable_detr-tiny"): _deformable_detr,
    ("object_detection", "rt_detr-tiny"): _rt_detr,
    ("universal_segmentation", "tiny"): _mask2former,
    ("universal_segmentation", "mask2former-tiny"): _mask2former,
    **ARCHITECTURES,
}

# model_type -> the submodule holding the pretrained feature extractor
_BACKBONES = {"upernet": "backbone", "detr": "model.backbone", "conditional_detr": "model.backbone",
              "deformable_detr": "model.backbone", "rt_detr": "model.backbone",
              "mask2former": "model.pixel_level_module.encoder"}


def presets(kind: str, plugin_paths: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names that build a random-init model for `kind`: built-in presets and model plugins'."""
    from framework.vision.model_plugins import plugin_presets

    return sorted({name for k, name in PRESETS if k == kind} | set(plugin_presets(kind, plugin_paths)))


def label_kwargs(class_names: list[str]) -> dict[str, Any]:
    """num_labels, id2label and label2id: saved in the model's config, so a saved model knows its classes."""
    return {"num_labels": len(class_names), "id2label": dict(enumerate(class_names)),
            "label2id": {name: i for i, name in enumerate(class_names)}}


def preset_config(kind: str, name: str, labels: dict[str, Any], plugin_paths: list[str] | tuple[str, ...] = ()) -> Any:
    """The config of the preset `name` (built-in, or a model plugin's: the plugin is registered with
    transformers' Auto classes first), or None when `name` is no preset (a folder or hub id)."""
    if (kind, name) in PRESETS:
        return PRESETS[(kind, name)](labels)
    from framework.vision.model_plugins import find_preset, plugin_config

    found = find_preset(kind, name, plugin_paths)
    return plugin_config(*found, labels) if found else None


def load_model(kind: str, name: str, class_names: list[str], auto_class: str | None = None,
               backbone: str | None = None, plugin_paths: list[str] | tuple[str, ...] = ()) -> tuple[nn.Module, bool]:
    """(model, pretrained): a preset (built-in or a model plugin's, models/) built with random weights
    (pretrained False; True when `backbone` names an ImageNet model loaded into its backbone), or a local
    folder or hub id loaded with from_pretrained (pretrained True). `plugin_paths`: engine.plugin_paths."""
    import transformers

    labels = label_kwargs(class_names)
    auto = getattr(transformers, auto_class or AUTO_CLASSES[kind])
    config = preset_config(kind, name, labels, plugin_paths)
    if config is not None:
        model = auto.from_config(config)
        if backbone:
            load_backbone(model, str(backbone), name)
        set_detr_backbone_training(model, pretrained=bool(backbone))
        return model, bool(backbone)
    if backbone:
        raise FrameworkError(f"task.model.backbone={backbone} needs a preset as task.model.name (presets: "
                             f"{', '.join(presets(kind, plugin_paths))}); '{name}' is a whole model and keeps its own backbone")
    from framework.vision.model_plugins import register_for_folder

    register_for_folder(name, plugin_paths)  # a saved model of a plugin's architecture: its classes first
    model = _from_pretrained(auto, kind, name, labels, plugin_paths)
    set_detr_backbone_training(model, pretrained=True)
    return model, True


def _from_pretrained(auto: Any, kind: str, name: str, labels: dict[str, Any], plugin_paths: Any = ()) -> nn.Module:
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local and not (path / "config.json").is_file():
        raise FrameworkError(f"model folder not found: looked for {path / 'config.json'} (a save_pretrained folder)")
    try:
        # id2label alone sets the class count: with num_labels too, transformers compares it against the
        # saved config's id2label first and warns about a mismatch that the new id2label then resolves
        mapping = {k: labels[k] for k in ("id2label", "label2id")}
        return auto.from_pretrained(str(path) if looks_local else name, ignore_mismatched_sizes=True, **mapping)
    except OSError as exc:  # not on the hub, or no network: say what was tried and what else is possible
        import difflib

        first, known = str(exc).strip().splitlines()[0], presets(kind, plugin_paths)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean the preset '{close[0]}'? " if close else ""
        raise FrameworkError(f"cannot load model '{name}' for {kind}: {first} "
                             f"({hint}presets: {', '.join(known)}; or a local save_pretrained folder)") from None
    except ValueError as exc:  # a config.json of a type transformers does not know, or not for this kind
        first = str(exc).strip().splitlines()[0]
        raise FrameworkError(f"cannot load model '{name}' for {kind}: {first} (a custom architecture needs its "
                             f"model plugin on the plugin path: `framework models` lists those found)") from None


def backbone_prefix(model: nn.Module) -> str:
    """The name of the submodule holding the feature extractor (e.g. "vit", "segformer", "backbone")."""
    from framework.vision.model_plugins import backbone_of

    model_type = getattr(model.config, "model_type", "")
    prefix = _BACKBONES.get(model_type) or backbone_of(model_type) or getattr(model, "base_model_prefix", "")
    if not prefix or model.get_submodule(prefix) is None:
        raise FrameworkError(f"no backbone known for model type '{model_type}'")
    return prefix


def grouped(model: nn.Module, pretrained: bool, backbone_lr_multiplier: float) -> Any:
    """The model wrapped for the optimizer: a pretrained backbone is its own group at
    `backbone_lr_multiplier` (random-init presets train every part at the base rate)."""
    from framework.training.parameter_groups import GroupedModel, ParameterGroup

    if not pretrained or backbone_lr_multiplier == 1.0:
        return GroupedModel(model)
    group = ParameterGroup.from_prefix(model, backbone_prefix(model), name="backbone",
                                       lr_multiplier=backbone_lr_multiplier)
    return GroupedModel(model, [group])
