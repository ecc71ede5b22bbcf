# python -m pytest tests/test_sanity.py   (slow: short overfitting fits through the CLI)
"""`framework run ... --sanity`: each task x optimizer must lower its loss on a few batches before the grid
runs; a broken setup (here a learning rate of 0) stops the command before anything is written."""

from __future__ import annotations

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow


def test_sanity_passes_then_the_grid_is_listed(tmp_path):
    proc = run_cli("run", "tasks=digits,template", "optimizers=adamw_baseline,sgd_baseline", "--sanity", "--dry-run",
                   "-o", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("sanity ")]
    assert len(lines) == 4 and all(line.endswith(": ok") for line in lines), lines
    assert "4 runs (dry run: nothing was run)" in proc.stdout
    assert not (tmp_path / "results").exists()


def test_a_task_that_cannot_learn_stops_the_grid(tmp_path):
    proc = run_cli("run", "tasks=digits", "optimizer.learning_rate=1e-12", "--sanity", "-o", str(tmp_path / "results"),
                   cwd=tmp_path)
    assert proc.returncode == 1
    assert "sanity digits x adamw_baseline: loss" in proc.stdout and "FAILED: the loss did not fall by 10%" in proc.stdout
    assert "the grid was not run" in proc.stdout
    assert not (tmp_path / "results").exists()
