# python -m pytest tests/test_vision_data.py
"""The bundled synthetic COCO data (deterministic, real COCO files, safe to generate from two processes),
the COCO / ADE20K / class-folder readers, and the errors for missing or corrupt data."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from framework.errors import FrameworkError
from framework.vision.categories import Categories
from framework.vision.coco import CocoInstances, CocoPanoptic, instances_file, panoptic_dir, panoptic_file, prepare_coco
from framework.vision.collate import Collate
from framework.vision.folders import ADE20K, ImageFolder, prepare_ade20k
from framework.vision.images import read_panoptic_png
from framework.vision.sample import IGNORE_LABEL
from framework.vision.synthetic import (
    SyntheticClassificationSpec,
    SyntheticCocoSpec,
    prepare_synthetic_classification,
    prepare_synthetic_coco,
)
from framework.vision.targets import mask_targets, semantic_target
from framework.vision.transforms import train_transforms

SPEC = SyntheticCocoSpec(height=48, width=56, train=8, val=4, test=4)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return prepare_synthetic_coco(SPEC, tmp_path_factory.mktemp("cache"))


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_data_is_deterministic_per_seed(synthetic, tmp_path):
    again = prepare_synthetic_coco(SPEC, tmp_path / "other")
    assert again.name == synthetic.name and digest(again) == digest(synthetic)
    other_seed = prepare_synthetic_coco(SyntheticCocoSpec(**{**SPEC.__dict__, "seed": 1}), tmp_path / "other")
    assert other_seed != again
    assert digest(other_seed)["annotations/panoptic_val.json"] != digest(again)["annotations/panoptic_val.json"]


def test_synthetic_data_is_read_by_pycocotools(synthetic):
    from pycocotools.coco import COCO

    for split, count in (("train", 8), ("val", 4), ("test", 4)):
        coco = COCO(str(instances_file(synthetic, split)))
        assert len(coco.getImgIds()) == count
        assert sorted(coco.getCatIds()) == [1, 2, 4, 5, 7, 8]  # gaps, as COCO's ids have
        for ann in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(ann)
            assert mask.sum() == ann["area"] > 0
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        panoptic = json.loads(panoptic_file(synthetic, split).read_text())
        for ann in panoptic["annotations"]:
            ids = read_panoptic_png(panoptic_dir(synthetic, split) / ann["file_name"])
            for segment in ann["segments_info"]:
                assert (ids == segment["id"]).sum() == segment["area"]
            assert set(np.unique(ids)) - {0} == {s["id"] for s in ann["segments_info"]}


def test_synthetic_scenes_have_things_stuff_void_and_crowds(tmp_path):
    root = prepare_synthetic_coco(SyntheticCocoSpec(height=48, width=48, train=30, val=1, test=1), tmp_path)
    dataset = CocoPanoptic(root, "train")
    things = dataset.categories.thing_mask()
    crowds = voids = overlaps = 0
    for index in range(len(dataset)):
        sample = dataset[index]
        assert things[sample.labels].any() and (~things[sample.labels]).any()
        crowds += int(sample.iscrowd.any())
        voids += int((sample.panoptic == 0).any())
    instances = CocoInstances(root, "train")
    for index in range(len(instances)):
        boxes = instances[index].boxes
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                overlaps += int(bool((torch.minimum(boxes[i, 2:], boxes[j, 2:]) > torch.maximum(boxes[i, :2], boxes[j, :2])).all()))
    assert crowds >= 2 and voids == len(dataset) and overlaps >= 5


def test_instances_and_panoptic_readers_agree(synthetic):
    panoptic, instances = CocoPanoptic(synthetic, "val"), CocoInstances(synthetic, "val")
    assert panoptic.image_ids == instances.image_ids
    assert instances.categories.ids == panoptic.categories.ids[: len(instances.categories)]
    for index in range(len(panoptic)):
        p, i = panoptic[index], instances[index]
        assert torch.equal(p.image, i.image) and p.image.shape == (3, 48, 56)
        thing_masks, thing_labels = mask_targets(p, things_only=panoptic.categories.thing_mask())
        masks, labels = mask_targets(i)
        assert torch.equal(thing_labels, labels) and torch.equal(thing_masks, masks)
        assert torch.equal(i.iscrowd, p.iscrowd[panoptic.categories.thing_mask()[p.labels]])
        semantic = semantic_target(p)
        assert (semantic[p.panoptic == 0] == IGNORE_LABEL).all()


def test_loader_batches_jittered_panoptic_samples(synthetic):
    dataset = CocoPanoptic(synthetic, "train", transform=train_transforms(size=64))
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=Collate())
    batch = next(iter(loader))
    assert batch.images.shape == (4, 3, 64, 64) and batch.images.dtype == torch.float32
    for target in batch.targets:
        masks, labels = mask_targets(target)
        assert masks.shape[1:] == (64, 64) and len(masks) == len(labels)
        assert not (masks.any(0) & ~target.valid).any()  # no target on padding


def test_concurrent_generation_gives_one_complete_folder(tmp_path):
    spec = SyntheticCocoSpec(height=32, width=32, train=6, val=2, test=2, seed=5)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(2) as pool:
        roots = pool.starmap(prepare_synthetic_coco, [(spec, tmp_path), (spec, tmp_path)])
    assert roots[0] == roots[1] and [p.name for p in tmp_path.iterdir()] == [roots[0].name]
    assert digest(roots[0]) == digest(prepare_synthetic_coco(spec, tmp_path / "fresh"))


def test_missing_coco_is_an_error_naming_the_path_and_the_guide(tmp_path):
    with pytest.raises(FrameworkError, match=f"looked for {tmp_path / 'coco'}; .*docs/vision_data.md"):
        prepare_coco(tmp_path / "coco")
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "train2017").mkdir()
    with pytest.raises(FrameworkError, match="instances_train2017.json"):
        prepare_coco(tmp_path / "coco", kinds=("instances",))
    with pytest.raises(FrameworkError, match="not found: .*instances_val2017.json"):
        CocoInstances(tmp_path / "coco", "val2017")


def copy_dataset(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_corrupt_files_are_errors_naming_the_file(synthetic, tmp_path):
    root = copy_dataset(synthetic, tmp_path / "copy")
    dataset = CocoPanoptic(root, "val")
    image = root / "val" / dataset.records[1]["file_name"]
    image.write_bytes(image.read_bytes()[:100])  # truncated JPEG
    with pytest.raises(FrameworkError, match=f"cannot decode image {image}"):
        dataset[1]
    png = panoptic_dir(root, "val") / dataset.records[2]["png"]
    ids = read_panoptic_png(png)
    ids[0, 0] = 12345  # a segment id the json does not list
    from framework.vision.images import id_to_rgb
    Image.fromarray(id_to_rgb(ids)).save(png)
    with pytest.raises(FrameworkError, match=f"{png} has segment ids \\[12345\\]"):
        dataset[2]
    panoptic_file(root, "val").write_text('{"images": [')
    with pytest.raises(FrameworkError, match=f"cannot read COCO panoptic annotations {panoptic_file(root, 'val')}"):
        CocoPanoptic(root, "val")
    instances_file(root, "val").write_text('{"images": [], "annotations": []}')
    with pytest.raises(FrameworkError, match="missing categories"):
        CocoInstances(root, "val")


def test_panoptic_reader_keeps_string_image_ids(synthetic, tmp_path):
    # Cityscapes panoptic and other COCO-format sets name images by strings: kept as the file gives them.
    root = copy_dataset(synthetic, tmp_path / "copy")
    path = panoptic_file(root, "val")
    data = json.loads(path.read_text())
    for entry in data["images"]:
        entry["id"] = f"city_{entry['id']}"
    for ann in data["annotations"]:
        ann["image_id"] = f"city_{ann['image_id']}"
    path.write_text(json.dumps(data))
    original, renamed = CocoPanoptic(synthetic, "val"), CocoPanoptic(root, "val")
    assert renamed.image_ids == [f"city_{i}" for i in original.image_ids]
    for index in range(len(renamed)):
        a, b = original[index], renamed[index]
        assert b.image_id == f"city_{a.image_id}"
        assert torch.equal(a.panoptic, b.panoptic) and torch.equal(a.labels, b.labels)


def test_polygon_annotations_are_decoded(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    Image.new("RGB", (20, 10)).save(root / "val2017" / "1.jpg")
    data = {"images": [{"id": 1, "file_name": "1.jpg", "height": 10, "width": 20}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 1, 8, 4], "iscrowd": 0,
                             "area": 32, "segmentation": [[2, 1, 10, 1, 10, 5, 2, 5]]}],
            "categories": [{"id": 3, "name": "box"}]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    sample = CocoInstances(root, "val2017")[0]
    assert sample.labels.tolist() == [0] and sample.masks.shape == (1, 10, 20)
    assert sample.masks[0, 1:5, 2:10].all() and sample.masks.sum() <= 9 * 5


def test_categories_map_ids_to_labels_and_back():
    categories = Categories.from_coco([{"id": 92, "name": "sky", "isthing": 0}, {"id": 3, "name": "car", "isthing": 1},
                                       {"id": 1, "name": "person", "isthing": 1}])
    assert categories.names == ("person", "car", "sky")
    assert [categories.label(i) for i in (1, 3, 92)] == [0, 1, 2]
    assert [categories.category_id(label) for label in range(3)] == [1, 3, 92]
    assert categories.thing_labels == [0, 1] and categories.stuff_labels == [2]
    with pytest.raises(FrameworkError, match="unknown category id 7"):
        categories.label(7)


def write_ade(root: Path, names: list[str]) -> None:
    for split in ("training", "validation"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (8, 6), (k * 50, 0, 0)).save(root / "images" / split / f"ADE_{k}.jpg")
            labels = np.zeros((6, 8), dtype=np.uint8)
            labels[:, 4:] = 1 + k
            labels[0, 0] = len(names)
            Image.fromarray(labels).save(root / "annotations" / split / f"ADE_{k}.png")
    rows = ["Idx,Ratio,Train,Val,Name"] + [f"{i + 1},0.1,1,1,{n}" for i, n in enumerate(names)]
    (root / "objectInfo150.csv").write_text("\n".join(rows) + "\n")


def test_ade20k_reader_shifts_labels_and_ignores_unlabelled(tmp_path):
    with pytest.raises(FrameworkError, match="ADE20K not found: looked for"):
        prepare_ade20k(tmp_path / "ade")
    write_ade(tmp_path / "ade", ["wall", "building;edifice", "sky"])
    dataset = ADE20K(tmp_path / "ade", "val")
    assert dataset.categories.names == ("wall", "building", "sky") and len(dataset) == 2
    semantic = dataset[1].semantic
    assert semantic[1, 0] == IGNORE_LABEL and semantic[1, 5] == 1 and semantic[0, 0] == 2


def test_synthetic_classification_folders(tmp_path):
    spec = SyntheticClassificationSpec(height=32, width=32, train=12, val=6, test=6)
    root = prepare_synthetic_classification(spec, tmp_path)
    dataset = ImageFolder(root, "train")
    assert dataset.categories.names == ("circle", "cross", "ring", "square", "star", "triangle")
    assert len(dataset) == 12 and dataset[0].image.shape == (3, 32, 32)
    assert sorted(int(dataset[i].labels) for i in range(12)) == sorted(list(range(6)) * 2)
    with pytest.raises(FrameworkError, match="image folder not found: looked for"):
        ImageFolder(root, "missing")


def test_held_out_validation_shares_no_sample_and_reads_with_the_eval_transform(synthetic):
    from framework.vision.task_data import hold_out
    from framework.vision.transforms import eval_transforms

    train_transform, eval_transform = train_transforms(64, 0.5, 1.5), eval_transforms(48, 64)
    reader = CocoInstances(synthetic, "train", train_transform, masks=False)
    train, val = hold_out(reader, eval_transform, 0.25, seed=0)
    assert set(train.indices).isdisjoint(val.indices) and len(train) + len(val) == len(reader)
    assert train.dataset.transform is train_transform and val.dataset.transform is eval_transform
    assert val[0].image.shape[1:] == (48, 56)  # the eval resize (shorter side 48) of a 48x56 scene, no crop
    assert hold_out(reader, eval_transform, 0.25, seed=0)[1].indices == val.indices  # fixed by the seed
