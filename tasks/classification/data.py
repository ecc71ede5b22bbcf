"""Class-per-folder images: the bundled synthetic shapes, or ImageNet-style folders (`task.data_dir`).

Bundled data has train / val / test folders. Real data (root/train, root/val as ImageNet ships) has no
labelled test split, so `val` becomes the test set and a fixed `val_fraction` of `train` (drawn with
`split_seed`) selects the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from framework.api import TaskDataModule
from framework.vision.collate import Collate
from framework.vision.decoded_cache import check_mode, use_cache
from framework.vision.folders import ImageFolder, prepare_image_folder
from framework.vision.normalization import model_normalization
from framework.vision.synthetic import (
    SyntheticClassificationSpec,
    prepare_synthetic_classification,
)
from framework.vision.task_data import hold_out
from framework.vision.transforms import Compose, Normalize, RandomHorizontalFlip, Resize


class ClassificationDataModule(TaskDataModule):
    def __init__(self, config):
        super().__init__(config)
        task = config.task
        check_mode(task.get("cache"))  # a bad task.cache fails before any data is read
        self.collate_fn = Collate(size_divisor=1)  # every image is resized to image_size: nothing to pad
        size = int(task.image_size)
        resize = Resize(size, size)
        # the statistics the model was pretrained with (framework/vision/normalization.py)
        norm = model_normalization(str(task.model.name), task.model.get("backbone"),
                                   tuple(config.engine.get("plugin_paths") or ()))
        normalize = Normalize(norm.mean, norm.std)
        steps = (resize, RandomHorizontalFlip(), normalize) if task.flip else (resize, normalize)
        self.train_transform, self.eval_transform = Compose(steps), Compose((resize, normalize))
        # class names come from the folders: known before the model is built (its head's size)
        self.class_names = ImageFolder.classes_in(self.root(check=False), "train")

    def root(self, check: bool = True) -> Path:
        data_dir = self.config.task.data_dir
        if data_dir is None:
            size = int(self.config.task.bundled_image_size)
            return prepare_synthetic_classification(SyntheticClassificationSpec(height=size, width=size))
        return prepare_image_folder(data_dir) if check else Path(data_dir).expanduser()

    def prepare_data(self) -> None:
        self.root()

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        root, task = self.root(), self.config.task
        if task.data_dir is None:
            self.data_train = ImageFolder(root, "train", self.train_transform)
            self.data_val = ImageFolder(root, "val", self.eval_transform)
            self.data_test = ImageFolder(root, "test", self.eval_transform)
        else:
            train = ImageFolder(root, "train", self.train_transform)
            self.data_train, self.data_val = hold_out(train, self.eval_transform, float(task.val_fraction), int(task.split_seed))
            self.data_test = ImageFolder(root, "val", self.eval_transform)
        use_cache((self.data_train, self.data_val, self.data_test), task.get("cache"))  # decoded images, before resizing
