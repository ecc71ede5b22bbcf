"""MaskRCNNConfig: the sizes and the training / inference settings of Mask R-CNN (He et al. 2017).

Defaults are the ResNet-50-FPN model of the paper as Detectron2 and torchvision train it: FPN of 256
channels over ResNet stages 2-5 plus a max-pooled P6; one anchor size per level (32-512 px) in three
aspect ratios; RPN samples 256 anchors per image (half foreground at IoU >= 0.7, background < 0.3) and
keeps 1000 proposals after NMS at 0.7; the box head samples 512 proposals per image (a quarter
foreground at IoU >= 0.5), pools 7x7 into two 1024-wide FC layers; the mask head pools 14x14 into four
3x3 convs of 256 and a 2x deconvolution to 28x28 masks; inference keeps scores >= 0.05, NMS 0.5 per
class, the 100 best.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig, ResNetConfig

STAGES = ["stage1", "stage2", "stage3", "stage4"]  # ResNet's C2-C5, strides 4-32: the FPN's inputs


class MaskRCNNConfig(PretrainedConfig):
    model_type = "mask_rcnn"
    sub_configs: ClassVar[dict[str, type]] = {"backbone_config": AutoConfig}

    def __init__(self, backbone_config: dict[str, Any] | PretrainedConfig | None = None, fpn_channels: int = 256,
                 anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512),
                 aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
                 rpn_pre_nms_top_n_train: int = 2000, rpn_pre_nms_top_n_test: int = 1000,
                 rpn_post_nms_top_n_train: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                 rpn_nms_threshold: float = 0.7, rpn_foreground_iou: float = 0.7, rpn_background_iou: float = 0.3,
                 rpn_batch_size_per_image: int = 256, rpn_positive_fraction: float = 0.5,
                 roi_batch_size_per_image: int = 512, roi_positive_fraction: float = 0.25,
                 roi_foreground_iou: float = 0.5, box_head_dim: int = 1024, box_pool_size: int = 7,
                 mask_pool_size: int = 14, mask_head_channels: int = 256, mask_head_convs: int = 4,
                 sampling_ratio: int = 2, smooth_l1_beta: float = 1.0 / 9,
                 box_score_threshold: float = 0.05, box_nms_threshold: float = 0.5, detections_per_image: int = 100,
                 freeze_backbone_batch_norm: bool = False, initializer_range: float = 0.01, **kwargs: Any):
        if backbone_config is None:
            backbone_config = ResNetConfig(out_features=STAGES)  # ResNet-50
        elif isinstance(backbone_config, dict):
            backbone_config = dict(backbone_config)
            backbone_config = CONFIG_MAPPING[backbone_config.pop("model_type", "resnet")](**backbone_config)
        backbone_config.out_features = list(STAGES)
        self.backbone_config = backbone_config
        self.fpn_channels = fpn_channels
        self.anchor_sizes, self.aspect_ratios = list(anchor_sizes), list(aspect_ratios)
        self.rpn_pre_nms_top_n_train, self.rpn_pre_nms_top_n_test = rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test
        self.rpn_post_nms_top_n_train, self.rpn_post_nms_top_n_test = rpn_post_nms_top_n_train, rpn_post_nms_top_n_test
        self.rpn_nms_threshold = rpn_nms_threshold
        self.rpn_foreground_iou, self.rpn_background_iou = rpn_foreground_iou, rpn_background_iou
        self.rpn_batch_size_per_image, self.rpn_positive_fraction = rpn_batch_size_per_image, rpn_positive_fraction
        self.roi_batch_size_per_image, self.roi_positive_fraction = roi_batch_size_per_image, roi_positive_fraction
        self.roi_foreground_iou = roi_foreground_iou
        self.box_head_dim, self.box_pool_size, self.mask_pool_size = box_head_dim, box_pool_size, mask_pool_size
        self.mask_head_channels, self.mask_head_convs = mask_head_channels, mask_head_convs
        self.sampling_ratio, self.smooth_l1_beta = sampling_ratio, smooth_l1_beta
        self.box_score_threshold, self.box_nms_threshold = box_score_threshold, box_nms_threshold
        self.detections_per_image = detections_per_image
        self.freeze_backbone_batch_norm = freeze_backbone_batch_norm
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
