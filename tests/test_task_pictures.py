# python -m pytest -q tests/test_task_pictures.py   (slow: two tiny vision runs through `framework run`)
"""A task's own pictures (TaskModel.save_figure): classification's confusion matrix and semantic
segmentation's predicted masks, drawn by real tiny runs, copied by `framework plot` and embedded by
`framework report` (and decoded by headless Chromium when it is installed)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow

SCENES = ["task.batch_size=4", "task.bundled_image_size=64", "task.crop_size=64", "task.eval_short=64",
          "task.eval_max_size=128"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pictures")
    for task, overrides in (("classification", ["task.batch_size=8"]), ("semantic_segmentation", SCENES)):
        run_cli("run", f"tasks={task}", "optimizers=adamw_baseline", "task.max_epochs=1", "task.max_steps=2",
                *overrides, "-o", "results", cwd=root, check=True)
    return root / "results"


def _run_dir(results: Path, task: str) -> Path:
    (run_dir,) = (results / task / "adamw_baseline").iterdir()
    return run_dir


def test_runs_draw_their_pictures_per_tested_checkpoint(results):
    from matplotlib.image import imread

    run_dir = _run_dir(results, "classification")
    # a 2-step run never validates before its end: its best checkpoint is last.ckpt, and the pictures are
    # filed under the file tested
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    picture = run_dir / "figures" / "last" / "confusion_matrix_test.png"
    assert imread(picture).shape[0] > 100
    assert "rows the true class" in picture.with_suffix(".txt").read_text()
    counts = picture.with_suffix(".csv").read_text().splitlines()
    assert counts[0].startswith("target\\predicted,") and len(counts) == 1 + 6  # the six shapes
    assert sum(int(v) for line in counts[1:] for v in line.split(",")[1:]) == 120  # every test image once
    masks = _run_dir(results, "semantic_segmentation") / "figures" / "last" / "predicted_masks_test.png"
    assert imread(masks).shape[0] > 300  # four rows of image, ground truth, prediction


def test_plot_copies_and_report_embeds_the_pictures(results, tmp_path):
    from .conftest import require_service
    from .test_report import CHROMIUM, _probe

    run_cli("plot", str(results), "--format", "png", cwd=tmp_path, check=True)
    plots = results / "plots"
    confusion = plots / "classification_adamw_baseline_confusion_matrix_test.png"
    masks = plots / "semantic_segmentation_adamw_baseline_predicted_masks_test.png"
    assert confusion.read_bytes() == (_run_dir(results, "classification") / "figures" / "last" / "confusion_matrix_test.png").read_bytes()
    assert masks.is_file()

    proc = run_cli("report", str(results), cwd=tmp_path, check=True)
    page = Path(proc.stdout.strip().splitlines()[-1])
    text = page.read_text(encoding="utf-8")
    section = text[text.index('<section id="pictures">'):text.index('<section id="targets">')]
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', section)
    assert [alt.rsplit(" (", 1)[0] for _, alt in embedded] == [
        "confusion matrix on the test set: rows the true class, columns the predicted one",
        "the first 4 test images, their ground truth and the predicted masks (black: not scored)"]
    assert base64.b64decode(embedded[0][0]) == confusion.read_bytes()
    assert "classification, adamw_baseline, engine.seed=42, best checkpoint" in embedded[0][1]
    # the page's pictures decode in a browser: Chromium is required in CI, skipped (after the checks above) elsewhere
    require_service("Chromium", CHROMIUM is not None, "Debian: apt-get install chromium; CI runs .ci/install-chromium")
    seen = _probe(page, tmp_path)
    assert seen["errors"] == [] and all(w > 100 and h > 100 for w, h in seen["images"])
