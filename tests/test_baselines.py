# python -m pytest tests/test_baselines.py
"""Every experiment file in baselines/ is a valid grid: `framework run -e FILE --dry-run` accepts it, with
task.data_dir pointed at a small folder of the real dataset's layout (written here, offline), names the
command that runs it and its hardware, uses a model preset this checkout knows and is listed in
baselines/README.md (a misspelt preset would otherwise be taken for a hub id and fail on the GPU node)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from .conftest import REPO, run_cli

BASELINES = REPO / "baselines"
FILES = sorted(BASELINES.glob("*.yaml"))
# the layout each task reads from a real task.data_dir (docs/vision_data.md)
LAYOUT = {"coco_panoptic": "coco", "coco_instance": "coco", "coco_detection": "coco", "classification": "imagenet",
          "semantic_segmentation": "ade20k"}
MODEL_KIND = {"classification": "classification", "semantic_segmentation": "semantic_segmentation",
              "coco_detection": "object_detection", "coco_panoptic": "universal_segmentation",
              "coco_instance": "universal_segmentation"}


def _coco_2017(root: Path) -> Path:
    """The bundled scenes (framework/vision/synthetic.py), a few of them, laid out as COCO 2017."""
    from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco

    scenes = prepare_synthetic_coco(SyntheticCocoSpec(height=32, width=32, train=4, val=2, test=2), root / "cache")
    coco = root / "coco"
    (coco / "annotations").mkdir(parents=True)
    for split, name in (("train", "train2017"), ("test", "val2017")):
        shutil.copytree(scenes / split, coco / name)
        shutil.copytree(scenes / "annotations" / f"panoptic_{split}", coco / "annotations" / f"panoptic_{name}")
        for kind in ("panoptic", "instances"):
            shutil.copy(scenes / "annotations" / f"{kind}_{split}.json", coco / "annotations" / f"{kind}_{name}.json")
    return coco


def _ade20k(root: Path) -> Path:
    """ADEChallengeData2016's layout: images/ and annotations/ (labels 0..150) for training and validation."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("training", "validation"):
        for kind in ("images", "annotations"):
            (root / kind / split).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "images" / split / f"ADE_{k}.jpg")
            Image.fromarray(rng.integers(0, 151, (32, 32), dtype=np.uint8)).save(root / "annotations" / split / f"ADE_{k}.png")
    return root


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> dict[str, Path]:
    from framework.vision.synthetic import SyntheticClassificationSpec, write_synthetic_classification

    root = tmp_path_factory.mktemp("baseline-data")
    imagenet = write_synthetic_classification(root / "imagenet", SyntheticClassificationSpec(height=16, width=16, train=6, val=6, test=6))
    return {"coco": _coco_2017(root), "imagenet": imagenet, "ade20k": _ade20k(root / "ade20k")}


def test_there_is_a_file_per_published_recipe_and_a_bundled_cpu_version_per_vision_task():
    names = {path.stem for path in FILES}
    assert {"coco_panoptic_mask2former_swin_t", "coco_panoptic_mask2former_r50", "coco_instance_mask2former_swin_t",
            "coco_instance_mask2former_r50", "coco_detection_detr_r50", "semantic_segmentation_segformer_b0",
            "classification_vit_b16", "classification_resnet50", "digits", "multitask_pain"} <= names
    assert {f"{task}_bundled_cpu" for task in LAYOUT} <= names


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_a_baseline_file_is_a_valid_grid_that_says_how_to_run_it(path, data_dirs, tmp_path):
    from framework.vision.models import presets

    text = path.read_text()
    assert text.splitlines()[0].startswith(f"# framework run -e baselines/{path.name}")
    assert "Hardware:" in text and f"({path.name})" in (BASELINES / "README.md").read_text()
    experiment = yaml.safe_load(text)
    (task,) = experiment["tasks"]
    settings = experiment.get("task") or {}
    model = (settings.get("model") or {}).get("name", "tiny")
    if task in MODEL_KIND:
        assert model in presets(MODEL_KIND[task]), f"{path.name}: task.model.name {model!r} is no preset of this checkout"
    overrides = []
    if settings.get("data_dir") is not None:  # a placeholder the user edits: the small folder of its layout instead
        assert str(settings["data_dir"]).startswith("/path/to/"), "a real-data file's data_dir is a placeholder to edit"
        overrides.append(f"task.data_dir={data_dirs[LAYOUT[task]]}")
    overrides += _without_backbone(settings)
    done = run_cli("run", "-e", str(path), *overrides, "--dry-run", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(dry run: nothing was run)" in done.stdout and not (tmp_path / "out").exists()


def _without_backbone(settings: dict) -> list[str]:
    """A pretrained backbone is a placeholder folder the user edits too; the dry run's contract check builds
    the model, so it trains from random init here (composition: tests/test_vision_architectures.py)."""
    backbone = (settings.get("model") or {}).get("backbone")
    if backbone is None:
        return []
    assert str(backbone).startswith("/path/to/"), "a baseline's backbone is a placeholder to edit"
    return ["task.model.backbone=null"]


def test_the_panoptic_baseline_prints_its_sbatch_lines_on_one_node_or_two(data_dirs, tmp_path):
    path = BASELINES / "coco_panoptic_mask2former_swin_t.yaml"
    settings = yaml.safe_load(path.read_text())["task"]
    common = ("run", "-e", str(path), f"task.data_dir={data_dirs['coco']}", "engine.executor=slurm",
              *_without_backbone(settings), "--dry-run", "-o", str(tmp_path / "out"))
    one = run_cli(*common, cwd=tmp_path, check=True).stdout
    two = run_cli(*common, "engine.nodes=2", "engine.devices=4", cwd=tmp_path, check=True).stdout
    for lines, flags in ((one, ("--nodes=1", "--ntasks-per-node=8", "--gpus-per-node=8")),
                         (two, ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4"))):
        for flag in (*flags, "--cpus-per-task=9", "--time=4320", "--mem=400G", "--job-name=framework-coco_panoptic"):
            assert f"#SBATCH {flag}\n" in lines, (flag, lines)
