"""Semantic segmentation data: COCO-format panoptic scenes turned semantic (bundled synthetic scenes, or
COCO 2017 panoptic with `task.dataset: coco`), or ADE20K (`task.dataset: ade20k`).

Training: random flip, scale jitter `min_scale`..`max_scale` of `crop_size` and a `crop_size` square
crop (SegFormer's recipe on ADE20K: ratio 0.5-2.0, 512x512). Evaluation: shorter side `eval_short`,
longer side at most `eval_max_size`; batches are padded (padding is ignored by loss and metric).
"""

from __future__ import annotations

from framework.api import FrameworkError, TaskDataModule
from framework.vision.coco import CocoPanoptic
from framework.vision.collate import Collate
from framework.vision.decoded_cache import check_mode, use_cache
from framework.vision.folders import ADE20K, prepare_ade20k
from framework.vision.normalization import model_normalization
from framework.vision.task_data import coco_categories, coco_root, coco_splits, hold_out
from framework.vision.transforms import eval_transforms, train_transforms

DATASETS = ("coco", "ade20k")


class SemanticDataModule(TaskDataModule):
    def __init__(self, config):
        super().__init__(config)
        task = config.task
        if task.dataset not in DATASETS:
            raise FrameworkError(f"task.dataset '{task.dataset}' is not one of {', '.join(DATASETS)}")
        check_mode(task.get("cache"))  # a bad task.cache fails before any data is read
        self.collate_fn = Collate(size_divisor=32)  # SegFormer and UperNet downsample by 32
        # the statistics the model was pretrained with (framework/vision/normalization.py)
        norm = model_normalization(str(task.model.name), task.model.get("backbone"),
                                   tuple(config.engine.get("plugin_paths") or ()))
        self.train_transform = train_transforms(int(task.crop_size), float(task.min_scale), float(task.max_scale),
                                                mean=norm.mean, std=norm.std)
        self.eval_transform = eval_transforms(int(task.eval_short), int(task.eval_max_size), mean=norm.mean, std=norm.std)
        self.class_names = self._categories().names

    def _categories(self):
        task = self.config.task
        if task.dataset == "ade20k":
            if task.data_dir is None:
                raise FrameworkError("task.dataset=ade20k needs task.data_dir (the ADEChallengeData2016 folder)")
            return ADE20K(task.data_dir, "val").categories
        return coco_categories(task, "panoptic")

    def prepare_data(self) -> None:
        task = self.config.task
        if task.dataset == "ade20k":
            prepare_ade20k(task.data_dir)
        else:
            coco_root(task, "panoptic")

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        task = self.config.task
        if task.dataset == "coco":
            self.data_train, self.data_val, self.data_test = coco_splits(
                task, "panoptic", CocoPanoptic, self.train_transform, self.eval_transform)
            return
        train = ADE20K(task.data_dir, "train", self.train_transform)
        self.data_train, self.data_val = hold_out(train, self.eval_transform, float(task.val_fraction), int(task.split_seed))
        self.data_test = ADE20K(task.data_dir, "val", self.eval_transform)
        use_cache((self.data_train, self.data_val, self.data_test), task.get("cache"))  # (coco_splits caches its own)
