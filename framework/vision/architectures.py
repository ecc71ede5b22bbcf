"""Real-size architectures by name, built from configs written here (random init, nothing downloaded).

Each builder returns the transformers config of a published model: its layer sizes are those of the
paper's (and the Hugging Face hub's) model, so the parameter count matches the published one
(tests/test_vision_architectures.py checks each against its paper's number). The head has one output
per class of the task's data, so a count printed for a task with 6 classes is below the paper's.

    vit-b16                ViT-B/16, 224 px (Dosovitskiy et al. 2021)          classification
    resnet-50              ResNet-50 (He et al. 2016)                           classification
    segformer-b0           SegFormer with MiT-B0 (Xie et al. 2021)              semantic_segmentation
    upernet-convnext-tiny  UperNet with ConvNeXt-T (Liu et al. 2022)            semantic_segmentation
    detr-r50               DETR, ResNet-50 (Carion et al. 2020)                 object_detection
    deformable-detr-r50    Deformable DETR, ResNet-50 (Zhu et al. 2021)         object_detection
    mask2former-swin-tiny  Mask2Former, Swin-T (Cheng et al. 2022)              universal_segmentation
    mask2former-r50        Mask2Former, ResNet-50 (Cheng et al. 2022)           universal_segmentation

The backbones are transformers' own (ResNet, Swin, ConvNeXt, ViT), never timm's, so that an ImageNet
backbone saved with `save_pretrained` loads into them (`task.model.backbone`, backbones.py).
"""

from __future__ import annotations

from typing import Any, Callable

_STAGES = ["stage1", "stage2", "stage3", "stage4"]


def _resnet50(out_features: list[str] | None = None) -> Any:
    from transformers import ResNetConfig

    # transformers' defaults are ResNet-50: bottleneck blocks, depths 3-4-6-3, widths 256-2048
    return ResNetConfig(out_features=out_features)


def vit_b16(labels: dict[str, Any]) -> Any:
    from transformers import ViTConfig

    # 224 px in 16 px patches, width 768, 12 layers of 12 heads, MLP 3072: the defaults are ViT-B/16
    return ViTConfig(image_size=224, patch_size=16, **labels)


def resnet_50(labels: dict[str, Any]) -> Any:
    from transformers import ResNetConfig

    return ResNetConfig(**labels)


def segformer_b0(labels: dict[str, Any]) -> Any:
    from transformers import SegformerConfig

    # MiT-B0 (widths 32-64-160-256, two blocks per stage) and a 256-wide all-MLP decoder: the defaults
    return SegformerConfig(semantic_loss_ignore_index=255, **labels)


def upernet_convnext_tiny(labels: dict[str, Any]) -> Any:
    from transformers import ConvNextConfig, UperNetConfig

    # ConvNeXt-T (3-3-9-3 blocks, 96-768 wide; stochastic depth 0.4 as in the paper's ADE20K runs), a
    # 512-channel UperNet head and the 256-channel auxiliary FCN head on stage 3 (mmsegmentation's layout)
    backbone = ConvNextConfig(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768], drop_path_rate=0.4,
                              out_features=_STAGES)
    return UperNetConfig(backbone_config=backbone, hidden_size=512, use_auxiliary_head=True,
                         auxiliary_in_channels=384, auxiliary_channels=256, loss_ignore_index=255, **labels)


def detr_r50(labels: dict[str, Any]) -> Any:
    from transformers import DetrConfig

    # 6 + 6 layers of width 256 (FFN 2048, 8 heads) over 100 queries on ResNet-50's stride-32 features
    return DetrConfig(backbone_config=_resnet50(["stage4"]), **labels)


def deformable_detr_r50(labels: dict[str, Any]) -> Any:
    from transformers import DeformableDetrConfig

    # the paper's plain variant (Table 1 "Deformable DETR"): 4 levels (strides 8-32 and one more
    # convolution), 4 sampling points, 300 queries, neither box refinement nor two stages
    return DeformableDetrConfig(backbone_config=_resnet50(["stage2", "stage3", "stage4"]), **labels)


def _mask2former(backbone: Any, labels: dict[str, Any]) -> Any:
    from transformers import Mask2FormerConfig

    # the defaults are the paper's head: 6 deformable pixel-decoder layers, 9 decoder layers (+ the
    # prediction from the learned queries: transformers' decoder_layers=10), 100 queries, width 256
    return Mask2FormerConfig(backbone_config=backbone, **labels)


def mask2former_swin_tiny(labels: dict[str, Any]) -> Any:
    from transformers import SwinConfig

    backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                          drop_path_rate=0.3, out_features=_STAGES)
    return _mask2former(backbone, labels)


def mask2former_r50(labels: dict[str, Any]) -> Any:
    return _mask2former(_resnet50(_STAGES), labels)


# (task kind, name) -> config builder
ARCHITECTURES: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("classification", "vit-b16"): vit_b16,
    ("classification", "resnet-50"): resnet_50,
    ("semantic_segmentation", "segformer-b0"): segformer_b0,
    ("semantic_segmentation", "upernet-convnext-tiny"): upernet_convnext_tiny,
    ("object_detection", "detr-r50"): detr_r50,
    ("object_detection", "deformable-detr-r50"): deformable_detr_r50,
    ("universal_segmentation", "mask2former-swin-tiny"): mask2former_swin_tiny,
    ("universal_segmentation", "mask2former-r50"): mask2former_r50,
}
