# python -m pytest tests/test_search_plots.py
"""Searches in `framework plot`: runs that are not a grid get a best-so-far curve and a per-parameter
scatter instead of a heatmap, from run folders written by hand (tests/synthetic_search.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pandas as pd
import pytest

from framework.results import search_figures, searches, selection
from framework.results.analysis import analyze
from framework.results.run_folder import load_runs

from . import synthetic_search as synthetic
from .conftest import run_cli


@pytest.fixture
def search_output(tmp_path) -> Path:
    output = synthetic.write_search(tmp_path / "out")
    return synthetic.write_grid(output)


def _trials(output: Path, task: str = "toy"):
    return pd.read_csv(output / "plots" / f"{task}_trials.csv")


def test_plot_writes_best_so_far_and_scatter_and_no_heatmap_for_a_search(search_output, tmp_path):
    proc = run_cli("plot", str(search_output), cwd=tmp_path, check=True)
    plots = search_output / "plots"
    names = {p.name for p in plots.iterdir()}
    assert {"toy_best_so_far.png", "toy_best_so_far.pdf", "toy_scatter.png", "toy_scatter.pdf",
            "toy_trials.csv"} <= names
    assert not any(name.startswith("toy_heatmap") for name in names), names
    assert {"grid_heatmap.png", "grid_heatmap.pdf", "grid_heatmap.csv"} <= names  # a real grid keeps its heatmap
    assert not any(name.startswith(("grid_best_so_far", "grid_scatter")) for name in names)
    printed = {Path(line).name for line in proc.stdout.splitlines()}
    assert {"toy_best_so_far.png", "toy_scatter.png", "toy_trials.csv"} <= printed

    from matplotlib.image import imread

    for name in ("toy_best_so_far.png", "toy_scatter.png"):
        image = imread(plots / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    table = pd.read_csv(plots / "results.csv")  # which trial a run is, a column of the results table
    toy = table[table.task == "toy"].drop_duplicates("run_id")
    assert sorted(set(toy["search.trial"])) == list(range(synthetic.TRIALS)) and set(toy["search.study"]) == {synthetic.STUDY}
    assert table[table.task == "grid"]["search.trial"].isna().all()


def test_best_so_far_is_monotone_in_trial_order_and_ends_on_the_best_table(search_output):
    result = analyze(search_output, formats=("png",))
    trials = _trials(search_output)
    best = {row["optimizer"]: row for row in result.best_rows if row["task"] == "toy"}
    for optimizer in synthetic.OPTIMIZERS:
        own = trials[trials.optimizer == optimizer]
        assert list(own.trial) == list(range(1, synthetic.TRIALS + 1))
        # by search.trial, although the folders' names and the runs' start times are in other orders
        assert list(own["search.trial"]) == list(range(synthetic.TRIALS))
        lrs = [lr for lr, _ in synthetic.draws(optimizer)]
        assert list(own["optimizer.learning_rate"]) == pytest.approx(lrs)
        curve = list(own.best_so_far)
        assert all(later >= earlier for earlier, later in itertools.pairwise(curve)), curve
        trial, value = synthetic.expected_best(optimizer)
        assert curve[-1] == pytest.approx(value) == pytest.approx(best[optimizer]["select_mean"])
        assert own.best_so_far_trial.iloc[-1] == trial + 1
        assert own.best_so_far_test.iloc[-1] == pytest.approx(best[optimizer]["mean"])
        assert list(own[own.chosen].trial) == [trial + 1] == [own.best_so_far_trial.iloc[-1]]
        assert best[optimizer]["optimizer.learning_rate"] == pytest.approx(lrs[trial])
        # each point of the curve is the best of the complete trials so far, computed by hand
        done = [v if c else -math.inf for v, c in zip(own.value.fillna(-math.inf), own.complete)]
        assert curve == pytest.approx([max(done[: i + 1]) for i in range(len(done))])


def test_a_tie_on_validation_ends_the_curve_on_the_best_tables_configuration(tmp_path):
    # trials 0 and 2 score the same on validation; the best table takes the smaller learning rate (grid
    # order), which came later: the curve moves to it, its test line with it
    output = tmp_path / "out"
    for trial, lr in enumerate((0.1, 0.5, 0.01)):
        run_dir = synthetic.write_run(output, "toy", "adam", lr, 0.0, 1, trial)
        (run_dir / "scores.json").write_text(f'{{"best": {{"val_acc": {0.9 if lr != 0.5 else 0.5}, "test_acc": {lr}}}}}')
    result = analyze(output, formats=())
    trials = _trials(output)
    (best,) = result.best_rows
    assert best["optimizer.learning_rate"] == 0.01 and best["mean"] == 0.01
    assert list(trials.best_so_far) == [0.9, 0.9, 0.9] and list(trials.best_so_far_trial) == [1, 1, 3]
    assert list(trials.best_so_far_test) == [0.1, 0.1, 0.01] and list(trials.chosen) == [False, False, True]


def test_a_pruned_trial_is_never_best(search_output):
    # its scores.json holds the best validation score of the study (0.999): it is still not chosen
    result = analyze(search_output, formats=())
    optimizer, trial = synthetic.PRUNED
    trials = _trials(search_output)
    row = trials[(trials.optimizer == optimizer) & (trials["search.trial"] == trial)].iloc[0]
    assert row.outcome == "pruned" and math.isnan(row.value) and not row.chosen
    assert (trials.best_so_far < 0.99).all()
    (chosen,) = [r for r in result.best_rows if r["task"] == "toy" and r["optimizer"] == optimizer]
    assert chosen["select_mean"] < 0.99 and "pruned" not in chosen["states"]
    # a pruned trial is not a failed seed either: the other trials stay complete
    assert trials[trials.optimizer == optimizer].complete.sum() == synthetic.TRIALS - 2  # pruned, one failed seed

    runs = [r for r in load_runs(search_output) if r["task"] == "toy" and r["optimizer"] == optimizer]
    score = selection.scoring("toy", runs)
    configs = selection.configurations(runs, score)
    pruned = [c for c in configs if c.pruned]
    assert len(pruned) == 1 and pruned[0].select_mean is None  # its scores are not counted
    assert selection.pick(pruned, score.select_mode) is None
    assert selection.best(pruned, score.select_mode) == {}  # an optimizer whose every trial was pruned has none


def test_an_optimizer_whose_every_trial_was_pruned_has_no_row_and_a_note(tmp_path):
    output = synthetic.write_grid(tmp_path / "out", task="toy", optimizers=("adam",))
    for trial, (lr, wd) in enumerate(synthetic.draws("sgd")[:3]):
        synthetic.write_run(output, "toy", "sgd", lr, wd, 1, trial, "pruned")
    result = analyze(output, formats=())
    assert [row["optimizer"] for row in result.best_rows] == ["adam"]
    assert "task 'toy': every trial of sgd was pruned, so none is chosen" in result.notes
    trials = _trials(output)
    assert set(trials.outcome) == {"pruned"} and trials.best_so_far.isna().all()


def _edge_markers(ax) -> list[tuple[float, float]]:
    """(x, y in axes coordinates) of the markers drawn on the worst edge of a panel."""
    edge = ax.get_xaxis_transform()
    return [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines
            if len(line.get_xdata()) == 1 and line.get_transform() == edge and line.get_markeredgecolor() != "red"]


def _search_rows(output: Path):
    runs = [r for r in load_runs(output) if r["task"] == "toy"]
    score = selection.scoring("toy", runs)
    configs = selection.configurations(runs, score)
    keys = selection.varying_keys(configs)
    return score, searches.trial_rows(score, configs, selection.best(configs, score.select_mode), keys), keys


def test_scatter_has_a_panel_per_hyperparameter_log_for_wide_ranges_and_marks_the_chosen(search_output):
    score, rows, keys = _search_rows(search_output)
    assert keys == ["optimizer.learning_rate", "optimizer.weight_decay"]
    lr_panel, wd_panel = search_figures.scatter_figure(score, rows, keys).axes[:2]
    assert (lr_panel.get_xscale(), wd_panel.get_xscale()) == ("log", "linear")  # 4 decades against 0 to 0.1
    rings = [line.get_xdata()[0] for line in lr_panel.lines if line.get_markeredgecolor() == "red" and len(line.get_xdata())]
    expected = [synthetic.draws(o)[synthetic.expected_best(o)[0]][0] for o in synthetic.OPTIMIZERS]
    assert sorted(rings) == pytest.approx(sorted(expected))
    # the pruned and the diverged trial: on the bottom edge (higher is better), at their learning rates
    unscored = sorted(synthetic.draws(o)[t][0] for o, t in (synthetic.PRUNED, synthetic.DIVERGED))
    assert sorted(_edge_markers(lr_panel)) == [(lr, 0.02) for lr in unscored]
    lower_is_better = dataclasses.replace(score, select_mode="min")
    panel = search_figures.scatter_figure(lower_is_better, rows, keys).axes[0]
    assert {y for _, y in _edge_markers(panel)} == {0.98}  # the worst edge is the top then


def test_best_so_far_figure_draws_each_optimizers_curve(search_output):
    score, rows, _ = _search_rows(search_output)
    ax = search_figures.best_so_far_figure(score, rows).axes[0]
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post" and line.get_linestyle() == "-"]
    assert len(steps) == 2
    for line, optimizer in zip(steps, synthetic.OPTIMIZERS):
        assert list(line.get_xdata()) == list(range(1, synthetic.TRIALS + 1))
        assert line.get_ydata()[-1] == pytest.approx(synthetic.expected_best(optimizer)[1])
    assert len(_edge_markers(ax)) == 2


def test_a_grid_with_holes_is_drawn_as_trials_ordered_by_start_time(tmp_path):
    output = synthetic.write_grid(tmp_path / "out", optimizers=("adam",))
    # sgd: three of the four combinations, started in a known order that is not the folders' order
    points = [(1e-2, 0.01), (1e-3, 0.0), (1e-2, 0.0)]
    for i, (lr, wd) in enumerate(points):
        for seed in synthetic.SEEDS:
            synthetic.write_run(output, "grid", "sgd", lr, wd, seed, None, started=synthetic.START + 10 * i + seed)
    result = analyze(output, formats=("png",))
    assert {p.name for p in result.tasks["grid"].searches} == {"grid_best_so_far.png", "grid_scatter.png",
                                                               "grid_trials.csv"}
    heatmap = pd.read_csv(output / "plots" / "grid_heatmap.csv")
    assert set(heatmap.optimizer) == {"adam"}  # the full grid keeps its heatmap panel
    trials = _trials(output, "grid")
    assert set(trials.optimizer) == {"sgd"}
    assert list(zip(trials["optimizer.learning_rate"], trials["optimizer.weight_decay"])) == points


def test_which_runs_form_a_grid(tmp_path):
    output = synthetic.write_grid(tmp_path / "grid")
    assert searches.search_optimizers(load_runs(output)) == set()
    # one learning rate drawn by a random search is a search, though one key's values always "form a grid"
    synthetic.write_run(tmp_path / "one", "toy", "adam", 0.01, 0.0, 1, 0)
    synthetic.write_run(tmp_path / "one", "toy", "adam", 0.02, 0.0, 1, 1)
    assert searches.search_optimizers(load_runs(tmp_path / "one")) == {"adam"}
    configs = selection.configurations(load_runs(output))
    for config in configs:  # a grid enumerated by the search's grid strategy is still a grid
        for run in config.runs:
            run["search.strategy"] = "grid"
    assert searches.forms_grid([c for c in configs if c.optimizer == "adam"])
