# python -m pytest tests/test_decoded_cache.py
"""`task.cache`: decoded samples come from the cache from the second epoch on, equal to freshly decoded
ones; a changed file or reader option reads another entry; a corrupt disk entry is decoded again."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from framework.config import Node
from framework.errors import FrameworkError
from framework.vision.coco import CocoInstances, CocoPanoptic
from framework.vision.decoded_cache import use_cache
from framework.vision.folders import ImageFolder
from framework.vision.synthetic import (
    SyntheticClassificationSpec,
    SyntheticCocoSpec,
    prepare_synthetic_classification,
    prepare_synthetic_coco,
)
from framework.vision.task_data import coco_splits
from framework.vision.transforms import eval_transforms, train_transforms

SPEC = SyntheticCocoSpec(height=48, width=56, train=8, val=4, test=4)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return prepare_synthetic_coco(SPEC, tmp_path_factory.mktemp("data"))


class CountingPanoptic(CocoPanoptic):
    """The real reader, counting how often it decodes files."""

    decodes = 0

    def decode(self, index):
        type(self).decodes += 1
        return super().decode(index)


def same(a, b) -> bool:
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == y.dtype
                    and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def epoch(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_second_epoch_reads_the_cache_and_equals_fresh_decoding(synthetic, tmp_path, mode):
    CountingPanoptic.decodes = 0
    cached = CountingPanoptic(synthetic, "train")
    use_cache([cached], mode, tmp_path)
    fresh = CocoPanoptic(synthetic, "train")
    first = epoch(cached)
    assert CountingPanoptic.decodes == SPEC.train
    second = epoch(cached)
    assert CountingPanoptic.decodes == SPEC.train  # nothing decoded again
    assert all(same(a, b) and same(b, c) for a, b, c in zip(first, second, epoch(fresh)))
    files = list(tmp_path.rglob("*.sample"))
    assert len(files) == (SPEC.train if mode == "disk" else 0)

    # a new process (here: a new reader) reads the disk entries; the random augmentation still runs on
    # every access and draws the same as without a cache
    again = CountingPanoptic(synthetic, "train", train_transforms(32, 0.5, 1.5))
    use_cache([again], mode, tmp_path)
    plain = CocoPanoptic(synthetic, "train", train_transforms(32, 0.5, 1.5))
    for index in range(len(plain)):
        torch.manual_seed(index)
        augmented = again[index]
        torch.manual_seed(index)
        assert same(augmented, plain[index])
    assert CountingPanoptic.decodes == SPEC.train * (1 if mode == "disk" else 2)


def test_workers_share_the_disk_cache(synthetic, tmp_path):
    """Two DataLoader workers write entries at once (atomic renames): every entry is whole and equal."""
    dataset = CocoPanoptic(synthetic, "train")
    use_cache([dataset], "disk", tmp_path)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    for _ in range(2):
        loaded = list(loader)
    assert len(list(tmp_path.rglob("*.sample"))) == SPEC.train and not list(tmp_path.rglob(".*"))
    assert all(same(a, b) for a, b in zip(loaded, epoch(CocoPanoptic(synthetic, "train"))))


def test_changed_options_or_files_miss_the_cache(synthetic, tmp_path):
    boxes, masks = CocoInstances(synthetic, "val", masks=False), CocoInstances(synthetic, "val", masks=True)
    use_cache([boxes, masks], "disk", tmp_path)
    assert boxes.cache.folder != masks.cache.folder  # another preprocessing: another key
    epoch(boxes)
    assert masks[0].masks is not None and boxes[0].masks is None  # neither reads the other's entries

    counting = CountingPanoptic(synthetic, "val")
    use_cache([counting], "disk", tmp_path)
    epoch(counting)
    CountingPanoptic.decodes = 0
    image = synthetic / "val" / counting.records[0]["file_name"]
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    epoch(counting)
    assert CountingPanoptic.decodes == 1  # only the changed sample is decoded again


def test_a_corrupt_entry_is_decoded_again_and_rewritten(synthetic, tmp_path):
    dataset = CountingPanoptic(synthetic, "test")
    use_cache([dataset], "disk", tmp_path)
    first = epoch(dataset)
    entry = sorted(tmp_path.rglob("0-*.sample"))[0]
    whole = entry.read_bytes()
    flipped = whole[:-10] + bytes([whole[-10] ^ 1]) + whole[-9:]
    CountingPanoptic.decodes = 0
    for damaged in (whole[:40], whole[:-1], flipped):  # truncated (a full disk, a killed copy), a flipped bit
        entry.write_bytes(damaged)
        with pytest.warns(UserWarning, match="unreadable"):
            assert same(dataset[0], first[0])
        assert same(dataset[0], first[0])  # the rewritten entry loads
    assert CountingPanoptic.decodes == 3


def coco_layout(synthetic: Path, target: Path) -> Path:
    """The bundled scenes laid out as COCO 2017 (train2017, val2017), as a real `task.data_dir`."""
    import shutil

    for split, name in (("train", "train2017"), ("test", "val2017")):
        shutil.copytree(synthetic / split, target / name)
        (target / "annotations").mkdir(parents=True, exist_ok=True)
        shutil.copy(synthetic / "annotations" / f"panoptic_{split}.json", target / "annotations" / f"panoptic_{name}.json")
        shutil.copytree(synthetic / "annotations" / f"panoptic_{split}", target / "annotations" / f"panoptic_{name}")
    return target


def test_task_cache_setting_caches_every_split_of_real_data(synthetic, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_DATA_DIR", str(tmp_path / "cache"))  # where users move the cache
    root = coco_layout(synthetic, tmp_path / "coco")
    task = Node({"data_dir": str(root), "val_fraction": 0.25, "split_seed": 0, "cache": "disk"})
    train, val, test = coco_splits(task, "panoptic", CocoPanoptic, train_transforms(32), eval_transforms(32, 64))
    # train and the held-out val are Subsets of one reader's records, each with a cache
    assert {type(train).__name__, type(val).__name__} == {"Subset"}
    for split in (train, val, test):
        reader = split.dataset if hasattr(split, "dataset") else split
        assert reader.cache.folder.parent == tmp_path / "cache" / "decoded"
        epoch(split)
    assert len(list((tmp_path / "cache").rglob("*.sample"))) == SPEC.train + SPEC.test

    with pytest.raises(FrameworkError, match=r"task.cache: 'ram' is not one of none, memory, disk"):
        coco_splits(Node({**task, "cache": "ram"}), "panoptic", CocoPanoptic, None, None)


def test_classification_folders_cache_decoded_images(tmp_path):
    root = prepare_synthetic_classification(SyntheticClassificationSpec(height=16, width=16, train=12, val=6, test=6),
                                            tmp_path / "data")
    class CountingFolder(ImageFolder):
        decodes = 0

        def decode(self, index):
            type(self).decodes += 1
            return super().decode(index)

    cached, fresh = CountingFolder(root, "val"), ImageFolder(root, "val")
    use_cache([cached], "disk", tmp_path / "cache")
    assert all(same(a, b) for a, b in zip(epoch(cached), epoch(fresh)))  # first pass: decoded, then written
    assert CountingFolder.decodes == len(fresh)
    assert all(same(a, b) for a, b in zip(epoch(cached), epoch(fresh)))  # second pass: read from the cache
    assert CountingFolder.decodes == len(fresh)
    assert len(list((tmp_path / "cache").rglob("*.sample"))) == len(fresh)
