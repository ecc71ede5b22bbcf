# cd /work/main && /work/venv/bin/python -m pytest tests/test_plots.py -q
"""Heatmaps from a fake output folder: numbers, failed/diverged cells, files, split/aggregate, errors."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.results.heatmaps import plot_heatmaps
from framework.results.run_folder import write_config, write_scores, write_status

LRS = (1e-3, 1e-2)
WDS = (0.0, 0.1)
SEEDS = (1, 2)
DIVERGED = ("sgd", 1e-2, 0.1)  # every seed of this cell diverges
FAILED_SEED = ("adam", 1e-3, 0.0, 2)  # one seed of this cell fails


def _score(optimizer: str, lr: float, wd: float, seed: int, batch_size: int = 32) -> float:
    base = 0.9 if optimizer == "adam" else 0.8
    return round(base - 5 * lr + wd / 10 + seed / 100 + batch_size / 1000, 6)


def _config(task, optimizer, lr, wd, seed, batch_size=32, **plot):
    # the validation metric, which chooses the boxed cell, points the same way as the test metric
    mode = plot.get("test_metric_mode", "max")
    return {
        "task": {"name": task, "batch_size": batch_size, "target_metric": "val_acc", "target_metric_mode": mode},
        "optimizer": {"name": optimizer, "learning_rate": lr, "weight_decay": wd,
                      **({"momentum": 0.9} if optimizer == "sgd" else {})},
        "engine": {"seed": seed, "output_dir": "ignored", "plugin_paths": []},
        "evaluation": {"checkpoint": "best", "plot": {
            "metric": "test_acc", "test_metric_mode": "max", "format": ".3f", "limits": None,
            "x": "optimizer.learning_rate", "y": "optimizer.weight_decay", **plot}},
    }


def _write_run(output: Path, state: str, *args, **kwargs) -> None:
    task, optimizer, lr, wd, seed = args
    run_dir = output / task / optimizer / f"{optimizer}-{lr}-{wd}-{seed}-{kwargs.get('batch_size', 32)}"
    write_config(run_dir, _config(*args, **kwargs))
    if state == "done":
        score = _score(optimizer, lr, wd, seed, kwargs.get("batch_size", 32))
        # validation in the same order as test here: tests/test_selection.py makes them disagree
        write_scores(run_dir, {"best": {"val_acc": score - 0.05, "test_acc": score},
                               "last": {"val_acc": score - 0.06, "test_acc": score - 0.01}})
    write_status(run_dir, state, **({"error": f"{state} on purpose"} if state != "done" else {}))


def _fake_output(output: Path, batch_sizes=(32,)) -> Path:
    for optimizer in ("adam", "sgd"):
        for lr in LRS:
            for wd in WDS:
                for seed in SEEDS:
                    for batch_size in batch_sizes:
                        state = "done"
                        if (optimizer, lr, wd) == DIVERGED:
                            state = "diverged"
                        elif (optimizer, lr, wd, seed) == FAILED_SEED:
                            state = "failed"
                        _write_run(output, state, "toy", optimizer, lr, wd, seed, batch_size=batch_size)
    return output


def _csv(path: Path):
    import pandas as pd

    return pd.read_csv(path)


def _cell(table, optimizer, lr, wd):
    rows = table[(table.optimizer == optimizer) & (table.x == lr) & (table.y == wd)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_heatmap_files_and_numbers(tmp_path):
    output = _fake_output(tmp_path / "out")
    written = plot_heatmaps(output)
    plots = output / "plots"
    assert {p.name for p in written} == {"toy_heatmap.png", "toy_heatmap.pdf", "toy_heatmap.csv"}
    assert all(p.parent == plots and p.stat().st_size > 0 for p in written)

    table = _csv(plots / "toy_heatmap.csv")
    assert len(table) == 8
    for optimizer in ("adam", "sgd"):
        for lr in LRS:
            for wd in WDS:
                cell = _cell(table, optimizer, lr, wd)
                if (optimizer, lr, wd) == DIVERGED:
                    assert (cell.n_done, cell.n_runs, cell.states) == (0, 2, "diverged=2")
                    assert cell.isna()["mean"]
                    continue
                seeds = [s for s in SEEDS if (optimizer, lr, wd, s) != FAILED_SEED]
                scores = [_score(optimizer, lr, wd, s) for s in seeds]
                assert cell["mean"] == pytest.approx(statistics.mean(scores))
                assert (cell.n_done, cell.n_runs) == (len(seeds), 2)
                if len(scores) > 1:
                    assert cell["std"] == pytest.approx(statistics.stdev(scores))
                else:
                    assert cell.isna()["std"] and cell.states == "done=1;failed=1"
    assert set(table.metric) == {"best/test_acc"}

    from matplotlib.image import imread

    image = imread(plots / "toy_heatmap.png")
    assert image.ndim == 3 and 300 < image.shape[0] < 2000 and 500 < image.shape[1] < 3000


def test_custom_plot_dir_formats_and_axes(tmp_path):
    output = _fake_output(tmp_path / "out")
    written = plot_heatmaps(output, plot_dir=tmp_path / "figs", x="optimizer.weight_decay",
                            y="optimizer.learning_rate", formats=("svg",))
    assert sorted(p.name for p in written) == ["toy_heatmap.csv", "toy_heatmap.svg"]
    assert "<svg" in (tmp_path / "figs" / "toy_heatmap.svg").read_text()[:1000]  # an SVG, not only a file of that name
    table = _csv(tmp_path / "figs" / "toy_heatmap.csv")
    assert set(table.x_key) == {"optimizer.weight_decay"} and set(table.x) == set(WDS)


def test_another_varying_key_needs_split_or_aggregate(tmp_path):
    output = _fake_output(tmp_path / "out", batch_sizes=(32, 64))
    with pytest.raises(FrameworkError, match="--split task.batch_size") as error:
        plot_heatmaps(output)
    assert "\n" not in str(error.value) and "--aggregate" in str(error.value)


def test_split_writes_one_figure_per_value(tmp_path):
    output = _fake_output(tmp_path / "out", batch_sizes=(32, 64))
    written = plot_heatmaps(output, split=["task.batch_size"], formats=("png",))
    assert sorted(p.name for p in written) == [
        "toy_heatmap.csv", "toy_heatmap__task.batch_size=32.png", "toy_heatmap__task.batch_size=64.png"]
    table = _csv(output / "plots" / "toy_heatmap.csv")
    assert len(table) == 16
    row = table[(table["task.batch_size"] == 64)]
    cell = _cell(row, "adam", 1e-2, 0.1)
    assert cell["mean"] == pytest.approx(statistics.mean(_score("adam", 1e-2, 0.1, s, 64) for s in SEEDS))


def test_aggregate_takes_the_best_value_per_cell(tmp_path):
    output = _fake_output(tmp_path / "out", batch_sizes=(32, 64))
    plot_heatmaps(output, aggregate=["task.batch_size"], formats=("png",))
    table = _csv(output / "plots" / "toy_heatmap.csv")
    assert len(table) == 8
    cell = _cell(table, "sgd", 1e-3, 0.0)
    assert cell["task.batch_size"] == 64  # larger batch scores higher in the fake data
    assert cell["mean"] == pytest.approx(statistics.mean(_score("sgd", 1e-3, 0.0, s, 64) for s in SEEDS))
    diverged = _cell(table, *DIVERGED)
    assert (diverged.n_done, diverged.n_runs, diverged.states) == (0, 4, "diverged=4")


def _built_figure(output: Path, task: str = "toy"):
    """The heatmap Figure that plot_heatmaps draws for `task`'s one figure, built by the same code (the
    plan from the folder's runs, then the figure before it is saved), to read its axes back."""
    from framework.results.heatmaps import _figure, _plan
    from framework.results.run_folder import load_runs

    runs = [r for r in load_runs(output) if r["task"] == task]
    _, settings, ((_, cells),), _ = _plan(task, runs, None, None, (), ())
    return _figure(cells, settings, "title")


def _best_boxes(ax) -> list[tuple[float, float]]:
    """Lower-left corners of the red boxes that mark the best cell of a panel."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    return [tuple(p.get_xy()) for p in ax.patches if isinstance(p, Rectangle) and p.get_edgecolor() == to_rgba("red")]


def test_min_mode_limits_and_format_without_type(tmp_path):
    output = tmp_path / "out"
    for lr in LRS:
        for seed in SEEDS:
            _write_run(output, "done", "toy", "adam", lr, 0.0, seed,
                       test_metric_mode="min", limits=[0.0, 1.0], format="2.1")
    written = plot_heatmaps(output, formats=("png",))
    assert (output / "plots" / "toy_heatmap.png") in written
    means = [_cell(_csv(output / "plots" / "toy_heatmap.csv"), "adam", lr, 0.0)["mean"] for lr in LRS]
    lowest = means.index(min(means))
    assert lowest == 1  # the larger lr scores lower in the fake data: the best cell in min mode

    panel, colorbar = _built_figure(output).axes
    image = panel.images[0]
    assert (image.norm.vmin, image.norm.vmax) == (0.0, 1.0) and colorbar.get_ylim() == (0.0, 1.0)  # the limits, not the data's range
    assert image.cmap.name == "viridis_r"  # lower is better: the best end of the scale is viridis' bright one
    assert _best_boxes(panel) == [(lowest - 0.5, -0.5)]  # the box is on the lowest mean, not the highest
    # "2.1" has no type: fixed point with one decimal, for the mean and the std (0.942 and 0.897; std 0.007)
    assert [(t.get_position(), t.get_text()) for t in panel.texts] == [((0, 0), "0.9\n± 0.0"), ((1, 0), "0.9\n± 0.0")]


def test_max_mode_boxes_each_optimizers_highest_cell_and_scales_to_the_data(tmp_path):
    output = _fake_output(tmp_path / "out")
    plot_heatmaps(output, formats=())
    table = _csv(output / "plots" / "toy_heatmap.csv")
    figure = _built_figure(output)
    for ax, optimizer in zip(figure.axes, ("adam", "sgd")):
        best = table[table.optimizer == optimizer].sort_values("mean", ascending=False).iloc[0]
        assert _best_boxes(ax) == [(LRS.index(best.x) - 0.5, WDS.index(best.y) - 0.5)]
        assert ax.images[0].norm.vmin == pytest.approx(table["mean"].min())  # no limits: the data's range
        assert ax.images[0].norm.vmax == pytest.approx(table["mean"].max())
        assert ax.images[0].cmap.name == "viridis"
    diverged = [t.get_text() for t in figure.axes[1].texts if t.get_position() == (LRS.index(DIVERGED[1]), WDS.index(DIVERGED[2]))]
    assert diverged == ["diverged"]  # a cell without a score says why


def test_optimizer_specific_keys_do_not_count_as_varying(tmp_path):
    # optimizer.momentum exists only for sgd: that is not a key varying within the task
    output = _fake_output(tmp_path / "out")
    assert plot_heatmaps(output, formats=())[-1].name == "toy_heatmap.csv"
    table = _csv(output / "plots" / "toy_heatmap.csv")
    assert len(table) == 8 and "optimizer.momentum" not in table.columns  # one figure, not split by momentum


def test_errors(tmp_path):
    with pytest.raises(FrameworkError, match="no runs found in .*empty"):
        plot_heatmaps(tmp_path / "empty")
    output = _fake_output(tmp_path / "out")
    with pytest.raises(FrameworkError, match="no column 'optimizer.beta1'"):
        plot_heatmaps(output, x="optimizer.beta1")
    with pytest.raises(FrameworkError, match="did you mean task.batch_size"):
        plot_heatmaps(output, split=["task.batchsize"])


def test_module_imports_without_heavy_libraries():
    code = "import sys, framework.results.heatmaps; print(sorted({'matplotlib', 'pandas', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"
