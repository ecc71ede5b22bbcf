# python -m pytest tests/test_predict.py   (slow: tiny runs of every vision task through `framework run`)
"""`framework predict` on runs trained through the CLI: each task's files are read back with the tools of
its format (pycocotools for COCO results, our PQ reader for COCO panoptic, PIL for label maps, csv), the
overlays exist, and bad input is one line with exit status 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

pytestmark = pytest.mark.slow

SCENES = ["task.bundled_image_size=64", "task.crop_size=64", "task.eval_short=64", "task.eval_max_size=128"]
TINY = {  # a couple of steps each: the outputs' format is under test, not their quality
    "classification": ["task.batch_size=8"],
    "coco_detection": ["task.batch_size=4", *SCENES],
    "coco_instance": ["task.batch_size=4", *SCENES],
    "coco_panoptic": ["task.batch_size=4", *SCENES],
    "semantic_segmentation": ["task.batch_size=4", *SCENES],
    "digits": [],
    "multitask_pain": [],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    found = {}
    for task, overrides in TINY.items():
        run_cli("run", f"tasks={task}", "optimizers=adamw_baseline", "task.max_epochs=1", "task.max_steps=2",
                "engine.workers=0", *overrides, "-o", str(root / "results"), cwd=root, check=True)
        (found[task],) = (root / "results" / task / "adamw_baseline").iterdir()
    return found


def _scenes() -> Path:
    from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco

    return prepare_synthetic_coco(SyntheticCocoSpec(height=64, width=64, max_objects=6))


def _predict(run_dir: Path, tmp_path: Path, *inputs: str) -> Path:
    out = tmp_path / "out"
    proc = run_cli("predict", str(run_dir), *inputs, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"files written to {out}" in proc.stdout
    return out


def _val_images(count: int) -> list[Path]:
    return sorted((_scenes() / "val").glob("*.jpg"))[:count]


def test_classification_writes_top5_csv_and_overlays(runs, tmp_path):
    from framework.vision.synthetic import SyntheticClassificationSpec, prepare_synthetic_classification

    root = prepare_synthetic_classification(SyntheticClassificationSpec(height=64, width=64))
    out = _predict(runs["classification"], tmp_path, str(root / "val" / "circle"), str(root / "val" / "star" / "*.jpg"))
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    names = {"circle", "cross", "ring", "square", "star", "triangle"}
    assert len(rows) == len(list((root / "val").glob("*/*.jpg"))) // 3  # two of six class folders
    for row in rows:
        scores = [float(row[f"score_{k}"]) for k in range(1, 6)]
        assert {row[f"label_{k}"] for k in range(1, 6)} <= names and scores == sorted(scores, reverse=True)
    assert len(list((out / "overlays").glob("*.png"))) == len(rows)


@pytest.mark.parametrize("task", ["coco_detection", "coco_instance"])
def test_coco_results_load_with_pycocotools(runs, task, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = _val_images(4)
    out = _predict(runs[task], tmp_path, *map(str, images))
    results = json.loads((out / "detections.json").read_text())
    assert results, "a tiny model still scores its top queries"
    catalogue = COCO(str(out / "images.json"))  # the images predicted on, with their sizes
    loaded = catalogue.loadRes(str(out / "detections.json"))
    assert sorted(loaded.getImgIds()) == [int(p.stem) for p in images]  # COCO's file names give the ids
    for ann in loaded.loadAnns(loaded.getAnnIds()):
        x, y, w, h = ann["bbox"]
        assert 0 <= x and x + w <= 64.01 and 0 <= y and y + h <= 64.01
        if task == "coco_instance":
            assert loaded.annToMask(ann).shape == (64, 64)
    # the results are COCO's: they score against the bundled ground truth as they are
    truth = COCO(str(_scenes() / "annotations" / "instances_val.json"))
    evaluation = COCOeval(truth, truth.loadRes(str(out / "detections.json")), "segm" if task == "coco_instance" else "bbox")
    evaluation.params.imgIds = [int(p.stem) for p in images]
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert 0.0 <= evaluation.stats[0] <= 1.0  # an AP, not COCOeval's -1 for "nothing to score"
    assert len(list((out / "overlays").glob("*.png"))) == 4


def test_panoptic_json_and_pngs_read_back_by_our_pq_reader(runs, tmp_path):
    from framework.vision.images import index_segments, read_panoptic_png
    from framework.vision.metrics.panoptic import panoptic_quality_from_files

    images = _val_images(3)
    out = _predict(runs["coco_panoptic"], tmp_path, *map(str, images))
    predicted = json.loads((out / "panoptic.json").read_text())
    assert [a["image_id"] for a in predicted["annotations"]] == [int(p.stem) for p in images]
    for annotation in predicted["annotations"]:
        ids = read_panoptic_png(out / "panoptic" / annotation["file_name"])
        assert ids.shape == (64, 64)
        index_segments(ids, [s["id"] for s in annotation["segments_info"]], "prediction")  # no unlisted id
    # ground truth of the same three images, read with the predictions by the PQ reader
    truth = json.loads((_scenes() / "annotations" / "panoptic_val.json").read_text())
    keep = {int(p.stem) for p in images}
    truth["annotations"] = [a for a in truth["annotations"] if a["image_id"] in keep]
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    scores = panoptic_quality_from_files(tmp_path / "truth.json", _scenes() / "annotations" / "panoptic_val",
                                         out / "panoptic.json", out / "panoptic")
    assert 0.0 <= scores["pq"] <= 1.0
    assert len(list((out / "overlays").glob("*.png"))) == 3


def test_semantic_label_maps(runs, tmp_path):
    images = _val_images(3)
    out = _predict(runs["semantic_segmentation"], tmp_path, str(images[0].parent / "00000100000[1-3].jpg"))
    classes = list(csv.DictReader((out / "classes.csv").open()))
    for image in images:
        labels = np.array(Image.open(out / "labels" / f"{image.stem}.png"))
        assert labels.shape == (64, 64) and labels.dtype == np.uint8 and labels.max() < len(classes)
        assert (out / "overlays" / f"{image.stem}.png").is_file()


def test_digits_and_multitask_pain_read_their_arrays(runs, tmp_path):
    from sklearn.datasets import load_digits

    np.save(tmp_path / "digits.npy", load_digits().images[:5])  # [5, 8, 8], values 0..16
    out = _predict(runs["digits"], tmp_path, str(tmp_path / "digits.npy"))
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [row["row"] for row in rows] == ["0", "1", "2", "3", "4"] and rows[0]["label_1"] in "0123456789"
    np.savez(tmp_path / "windows.npz", features=np.random.default_rng(0).normal(size=(3, 40, 4)))
    out = _predict(runs["multitask_pain"], tmp_path, str(tmp_path / "windows.npz"))
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 3 and rows[0]["pain_label_1"] in ("none", "mild", "moderate", "severe")
    assert rows[0]["stimulus_label_1"] in ("baseline", "T1", "T2", "T3", "T4")


def test_bad_input_is_one_line_and_exit_status_2(runs, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.yaml", "status.json"):
        (unfinished / name).write_bytes((runs["digits"] / name).read_bytes())
    status = json.loads((unfinished / "status.json").read_text())
    (unfinished / "status.json").write_text(json.dumps({**status, "state": "running"}))
    image = str(_val_images(1)[0])
    cases = [((str(tmp_path / "no_such_run"), image), "no such run directory or checkpoint file"),
             ((str(unfinished), image), "the run has not finished (state: running)"),
             ((str(runs["coco_detection"]), str(broken)), f"cannot decode image {broken}"),
             ((str(runs["coco_detection"]), str(tmp_path / "none*.jpg")), "the pattern matches no file"),
             ((str(runs["digits"]), str(tmp_path)), "no .csv/.npy files in this folder for task 'digits'")]
    for arguments, message in cases:
        proc = run_cli("predict", *arguments, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
