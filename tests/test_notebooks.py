# python -m pytest tests/test_notebooks.py   (the headless runs are slow: tiny runs, then each notebook in a kernel)
"""The notebooks in notebooks/ run from top to bottom on tiny runs of the bundled data (nbclient and an
ipykernel, headless), so they never rot; the committed ones carry no outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from .conftest import REPO, run_cli

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SCENES = ["task.batch_size=4", "task.bundled_image_size=64", "task.crop_size=64", "task.eval_short=64",
          "task.eval_max_size=128"]
RUNS = {"classification": ("classification", ["task.batch_size=8"]),  # notebook -> (task, overrides)
        "detection": ("coco_instance", SCENES), "segmentation": ("coco_panoptic", SCENES)}


def test_every_notebook_has_its_tiny_run():
    assert sorted(RUNS) == [path.stem for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} cell {index} has outputs: clear them before committing (jupyter nbconvert "
                f"--clear-output --inplace {path.relative_to(REPO)})")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_run_headless(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    task, overrides = RUNS[path.stem]
    run_cli("run", f"tasks={task}", "optimizers=adamw_baseline", "task.max_epochs=1", "task.max_steps=2",
            "engine.workers=0", *overrides, "-o", str(tmp_path / "results"), cwd=tmp_path, check=True)
    (run_dir,) = (tmp_path / "results" / task / "adamw_baseline").iterdir()
    monkeypatch.setenv("FRAMEWORK_RUN_DIR", str(run_dir))  # the kernel inherits the environment
    monkeypatch.setenv("FRAMEWORK_PREDICTIONS", str(tmp_path / "predictions"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert "state done" in text and "reproduced:" in text
    assert any((tmp_path / "predictions" / "overlays").glob("*.png"))
