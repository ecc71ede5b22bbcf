# python -m pytest tests/test_estimate.py   (slow: short real fits to measure, and one to compare with)
"""`framework estimate`: parameters and FLOPs exactly as the model has them, a step time within a sane
factor of what a real run measures, a projection from each run's own config, and the table + markdown."""

from __future__ import annotations

import pytest

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.training.estimate import estimate, project_seconds

from .cells import run_cell, status_and_scores
from .conftest import run_cli

pytestmark = pytest.mark.slow

DIGITS_LAYERS = ((64, 128), (128, 128), (128, 10))


def test_estimate_matches_the_model_and_a_measured_fit(tmp_path):
    registry = Registry()
    runs = expand(parse_overrides(["tasks=digits", "optimizer.learning_rate=1e-3,1e-2", f"engine.output_dir={tmp_path}"]),
                  registry)
    (group,) = estimate(runs, registry, steps=10)  # the two learning rates share one measurement
    m = group.measurement
    assert len(group.runs) == 2 and m.device == "cpu"
    assert m.parameters == sum(i * o + o for i, o in DIGITS_LAYERS)
    assert m.forward_flops_per_sample == sum(2 * i * o for i, o in DIGITS_LAYERS)  # multiply-adds of the matmuls
    assert 2 * m.forward_flops_per_sample < m.train_flops_per_sample <= 3 * m.forward_flops_per_sample
    assert m.lengths == {"train": 1259, "val": 269, "test": 269}
    assert m.peak_memory_bytes > 0

    # digits by default: 30 epochs of 20 batches, 30 validations of 5 batches (each writing up to 2
    # checkpoints), then the best and the last checkpoint each validated and tested (5 + 5 batches)
    assert m.startup_s > 0 and m.eval_startup_s > 0 and m.checkpoint_s > 0
    expected = (30 * 20 * m.step_s + (30 * 5 + 2 * 10) * m.eval_step_s
                + m.startup_s + 30 * (m.eval_startup_s + 2 * m.checkpoint_s) + 2 * 2 * m.eval_startup_s)
    assert project_seconds(runs[0], m) == pytest.approx(expected)
    assert group.projected_s == pytest.approx(2 * expected)

    _, outcome, run_dir = run_cell(tmp_path / "fit", "tasks=digits", "task.max_epochs=3")
    measured = status_and_scores(run_dir)[1]["train"]["step_time_ms"] / 1000
    assert outcome.state == "done"
    assert 1 / 4 < m.step_s / measured < 4, (m.step_s, measured)


def test_estimate_command_prints_a_table_and_writes_markdown(tmp_path):
    out = tmp_path / "estimation.md"
    kept = "<!-- tune-batch: begin -->\n## tune-batch's table\n<!-- tune-batch: end -->"
    out.write_text("# an older estimate\n\n" + kept + "\n")  # a marked section survives a new estimate
    proc = run_cli("estimate", "tasks=digits,template", "optimizers=adamw_baseline", "engine.seed=1,2",
                   "--steps", "5", "--markdown", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "params (M)" in proc.stdout and "4 runs, projected" in proc.stdout
    text = out.read_text()
    assert text.startswith("# Estimated cost of the grid")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 4 and table[2].startswith("| digits | adamw_baseline | 0.0261 |")  # header, rule, 2 rows
    assert text.rstrip().endswith(kept) and "an older estimate" not in text
    assert not (tmp_path / "results").exists()  # estimating writes no run directory
