# python -m pytest tests/test_selection.py
"""The rules of docs/protocol.md on run folders written by hand: the configuration is chosen on the
validation metric and reported on the test metric; failed and diverged seeds count against their
configuration; the config refuses a test metric for selection; `framework report` names the protocol."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from framework.results.analysis import analyze
from framework.results.run_folder import write_config, write_scores, write_status

from .conftest import run_cli
from .test_plots import _best_boxes, _built_figure

SEEDS = (1, 2, 3)
LRS = (0.001, 0.01, 0.1)
# (validation, test) per optimizer x learning rate. adam: test-best at 0.001, val-best at 0.01.
# sgd: val-best at 0.001, test-best at 0.01. Chosen on validation, sgd (test 0.88) beats adam (0.85);
# chosen on test, adam (0.95) would beat sgd (0.90).
DISAGREE = {("adam", 0.001): (0.80, 0.95), ("adam", 0.01): (0.90, 0.85), ("adam", 0.1): (0.70, 0.60),
            ("sgd", 0.001): (0.85, 0.88), ("sgd", 0.01): (0.75, 0.90), ("sgd", 0.1): (0.60, 0.50)}


def _write(output: Path, values: dict, states: dict | None = None) -> Path:
    """One task `toy` (val_acc chooses, test_acc is reported; higher is better), three seeds per
    configuration; `states` maps (optimizer, lr, seed) to a state other than done."""
    for (optimizer, lr), (val, test) in values.items():
        for seed in SEEDS:
            run_dir = output / "toy" / optimizer / f"{optimizer}-{lr}-{seed}"
            write_config(run_dir, {
                "task": {"name": "toy", "batch_size": 32, "target_metric": "val_acc", "target_metric_mode": "max"},
                "optimizer": {"name": optimizer, "learning_rate": lr, "weight_decay": 0.0},
                "engine": {"seed": seed, "output_dir": "ignored", "plugin_paths": []},
                "evaluation": {"checkpoint": "best", "target": None, "plot": {
                    "metric": "test_acc", "test_metric_mode": "max", "format": ".3f", "limits": None,
                    "x": "optimizer.learning_rate", "y": "optimizer.weight_decay"}},
            })
            state = (states or {}).get((optimizer, lr, seed), "done")
            if state == "done":
                write_scores(run_dir, {"best": {"val_acc": val + seed / 1000, "test_acc": test + seed / 1000}})
            write_status(run_dir, state, **({} if state == "done" else {"error": f"{state} on purpose"}))
    return output


def _best(result) -> dict:
    return {row["optimizer"]: row for row in result.best_rows}


def _boxes(output: Path) -> dict[str, list[float]]:
    """The learning rate under each optimizer's red box in the heatmap figure."""
    figure = _built_figure(output)
    return {ax.get_title(): [LRS[round(x + 0.5)] for x, _ in _best_boxes(ax)] for ax in figure.axes[:-1]}


def test_the_box_the_best_table_and_the_ranks_follow_validation_not_test(tmp_path):
    output = _write(tmp_path / "out", DISAGREE)
    result = analyze(output, formats=("png",))
    best = _best(result)
    assert {o: r["configuration"] for o, r in best.items()} == {
        "adam": "optimizer.learning_rate=0.01", "sgd": "optimizer.learning_rate=0.001"}
    # reported on test: the chosen configuration's test mean, and the ranks by it
    assert best["adam"]["mean"] == pytest.approx(0.85 + 0.002) and best["sgd"]["mean"] == pytest.approx(0.88 + 0.002)
    assert best["adam"]["select_mean"] == pytest.approx(0.90 + 0.002) and best["adam"]["selected_by"] == "best/val_acc"
    assert (best["sgd"]["rank"], best["adam"]["rank"]) == (1, 2)
    assert _boxes(output) == {"adam": [0.01], "sgd": [0.001]}
    import pandas as pd

    cells = pd.read_csv(output / "plots" / "toy_heatmap.csv")
    assert sorted(zip(cells[cells.box].optimizer, cells[cells.box].x)) == [("adam", 0.01), ("sgd", 0.001)]
    # the cells still show the test scores
    assert cells[(cells.optimizer == "adam") & (cells.x == 0.001)]["mean"].item() == pytest.approx(0.952)
    shown = result.best_table()
    assert shown[0]["selected by"] == "best/val_acc 0.902" and shown[0]["seeds"] == "3/3"
    assert shown[0]["95% t-interval"] == "[0.850, 0.854]"  # std 0.001, t(0.975, 2) = 4.303: ± 0.0025


def test_a_diverged_seed_makes_its_configuration_the_worst(tmp_path):
    values = {("adam", lr): (0.9 - lr, 0.9 - lr) for lr in LRS}  # lr 0.001 is best on validation and test
    output = _write(tmp_path / "out", values, {("adam", 0.001, 2): "diverged"})
    result = analyze(output, formats=("png",))
    row = _best(result)["adam"]
    assert row["configuration"] == "optimizer.learning_rate=0.01" and row["complete"]
    assert row["mean"] == pytest.approx(statistics.mean(0.89 + s / 1000 for s in SEEDS))
    assert _boxes(output) == {"adam": [0.01]}


def test_an_incomplete_configuration_loses_to_a_complete_one_and_wins_only_among_incomplete_ones(tmp_path):
    values = {("adam", lr): (0.9 - lr, 0.9 - lr) for lr in LRS}
    # lr 0.001 has one seed done: its mean on that seed would win, but it did not finish its seeds
    states = {("adam", 0.001, 1): "failed", ("adam", 0.001, 3): "running"}
    output = _write(tmp_path / "one_done", values, states)
    assert _best(analyze(output, formats=("png",)))["adam"]["configuration"] == "optimizer.learning_rate=0.01"
    # every configuration has a seed that did not finish: the best of them is chosen, marked incomplete
    states = {("adam", 0.001, 1): "failed", ("adam", 0.01, 2): "failed", ("adam", 0.1, 3): "diverged"}
    output = _write(tmp_path / "none_complete", values, states)
    result = analyze(output, formats=("png",))
    row = _best(result)["adam"]
    assert row["configuration"] == "optimizer.learning_rate=0.001" and not row["complete"]
    assert result.best_table()[0]["seeds"] == "2/3 (1 failed; incomplete)"
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    (panel,) = _built_figure(output).axes[:-1]
    (box,) = [p for p in panel.patches if isinstance(p, Rectangle) and p.get_edgecolor() == to_rgba("red")]
    assert box.get_linestyle() == "--"  # dashed: chosen among incomplete configurations


def test_a_diverged_chosen_configuration_ranks_last_and_leaves_the_profile(tmp_path):
    values = {("adam", 0.01): (0.9, 0.9), ("sgd", 0.01): (0.5, 0.5)}
    output = _write(tmp_path / "out", values, {("adam", 0.01, 1): "diverged"})
    result = analyze(output, formats=("png",))
    best = _best(result)
    assert (best["sgd"]["rank"], best["adam"]["rank"]) == (1, 2)
    assert best["adam"]["incomplete_because"] == "1 diverged"
    assert {r["optimizer"]: r["value"] for r in result.profile_rows} == {"adam": float("-inf"), "sgd": pytest.approx(0.502)}


@pytest.mark.parametrize("overrides, message", [
    (("evaluation.select=test_acc",), "evaluation.select: configurations are chosen on the validation split"),
    (("task.target_metric=test_acc",), "task.target_metric 'test_acc', which is no validation metric"),
    (("evaluation.select=val_loss",), "evaluation.select_mode: set it to max or min"),
])
def test_a_test_metric_cannot_choose_configurations(tmp_path, overrides, message):
    proc = run_cli("run", "tasks=digits", *overrides, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_report_names_the_protocol(tmp_path):
    output = _write(tmp_path / "out", DISAGREE)
    proc = run_cli("report", str(output), cwd=tmp_path, check=True)
    assert proc.stdout.startswith("protocol v1 ")
    assert "protocol v1</span> (docs/protocol.md)" in (output / "report.html").read_text(encoding="utf-8")
