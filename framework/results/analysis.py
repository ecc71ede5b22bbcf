"""Everything `framework plot` and `framework report` make from an output folder, in one pass.

    load_runs_indexed -> heatmaps of the optimizers whose runs form a grid (heatmaps.py)
        -> results table (results_table.py)
        -> per task: configurations and the one chosen for each optimizer on the validation metric
           (selection.py, the rules of docs/protocol.md)
           -> best-configuration table (best_table.py), best so far and scatter of the optimizers
              whose runs are a search or no grid (searches.py), learning curves (curves.py),
              time to target (time_to_target.py), the task's own pictures of the chosen runs
              (task_figures.py)
        -> performance profiles across tasks (performance_profiles.py)

The runs are read once and handed to every step. Heatmaps come first: their checks (a config key that
varies besides the axes must be split or aggregated) fail before anything is written, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError


@dataclass
class TaskFigures:
    """What was made for one task."""

    task: str
    spec: str  # format spec of the task's numbers
    keys: list[str]  # hyperparameters that vary within the task (the grid's axes besides the seed)
    heatmaps: list[Path] = field(default_factory=list)
    searches: list[Path] = field(default_factory=list)  # best so far, scatter and trials of searched optimizers
    curves: list[Path] = field(default_factory=list)
    targets: list[Path] = field(default_factory=list)
    target_rows: list[dict[str, Any]] = field(default_factory=list)
    target: float | None = None
    target_metric: str | None = None
    pictures: list[Any] = field(default_factory=list)  # task_figures.TaskPicture: the task's own pictures


@dataclass
class Analysis:
    output_dir: Path
    plot_dir: Path
    runs: list[dict[str, Any]]
    written: list[Path] = field(default_factory=list)
    table: Any = None  # the results table (pandas.DataFrame, table.load_table)
    tasks: dict[str, TaskFigures] = field(default_factory=dict)
    best_rows: list[dict[str, Any]] = field(default_factory=list)
    profile: list[Path] = field(default_factory=list)
    profile_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be drawn, and why

    def best_table(self) -> list[dict[str, str]]:
        """best_rows as text for people, each in its task's number format (best.format_row)."""
        from framework.results.best_table import format_row

        return [format_row(row, self.tasks[row["task"]].spec) for row in self.best_rows]


def analyze(
    output_dir: str | Path,
    plot_dir: str | Path | None = None,
    x: str | None = None,
    y: str | None = None,
    split: Sequence[str] = (),
    aggregate: Sequence[str] = (),
    formats: Sequence[str] = ("png", "pdf"),
    strict: bool = True,
) -> Analysis:
    """Write every figure and table of `output_dir` into `plot_dir` (default `<output_dir>/plots`).

    strict (`framework plot`): a heatmap problem raises FrameworkError before anything is written.
    Not strict (`framework report`): it becomes a note and the other figures are still made."""
    from framework.results import best_table, performance_profiles, searches, selection
    from framework.results.heatmaps import plot_heatmaps
    from framework.results.results_table import load_table, write_table
    from framework.results.run_index import load_runs_indexed

    output_dir = Path(output_dir)
    runs = load_runs_indexed(output_dir)
    if not runs:
        raise FrameworkError(f"no runs found in '{output_dir}' (expected <task>/<optimizer>/<run_id>/config.yaml)")
    plot_dir = Path(plot_dir) if plot_dir is not None else output_dir / "plots"
    result = Analysis(output_dir, plot_dir, runs)
    tasks = selection.by_task(runs)
    searched = {task: searches.search_optimizers(task_runs) for task, task_runs in tasks.items()}
    grid_runs = [run for run in runs if run["optimizer"] not in searched[run["task"]]]
    try:
        heatmaps = plot_heatmaps(output_dir, plot_dir, x=x, y=y, split=split, aggregate=aggregate,
                                 formats=formats, runs=grid_runs) if grid_runs else []
    except FrameworkError as exc:
        if strict:
            raise
        heatmaps = []
        result.notes.append(f"heatmaps: {exc}")
    plot_dir.mkdir(parents=True, exist_ok=True)
    result.written += heatmaps
    result.table = load_table(output_dir, runs=runs)
    result.written += write_table(result.table, plot_dir)

    for task, task_runs in tasks.items():
        try:
            score = selection.scoring(task, task_runs)
        except FrameworkError as exc:
            result.notes.append(str(exc))
            continue
        _analyze_task(result, task, task_runs, score, heatmaps, formats, searched[task])
    if result.best_rows:
        result.written.append(best_table.write_best(result.best_rows, plot_dir))
    if result.profile_rows:
        result.profile = performance_profiles.plot_profiles(result.profile_rows, plot_dir, formats)
        result.written += result.profile
    return result


def _analyze_task(result: Analysis, task: str, task_runs: list[dict[str, Any]], score, heatmaps: list[Path],
                  formats: Sequence[str], searched: set[str]) -> None:
    """One task's figures: best configurations, searches, learning curves, time to target, profile rows."""
    from framework.results import (
        best_table,
        curves,
        performance_profiles,
        searches,
        selection,
        task_figures,
        time_to_target,
    )

    configs = selection.configurations(task_runs, score)
    chosen = selection.best(configs, score.select_mode)
    keys = selection.varying_keys(configs)
    figures = result.tasks[task] = TaskFigures(task, score.spec, keys, target=score.target,
                                               target_metric=score.target_metric)
    figures.heatmaps = [p for p in heatmaps if p.stem == f"{task}_heatmap" or p.stem.startswith(f"{task}_heatmap__")]
    result.best_rows += best_table.best_rows(score, chosen, keys)
    for optimizer in sorted({c.optimizer for c in configs} - set(chosen)):
        result.notes.append(f"task '{task}': every trial of {optimizer} was pruned, so none is chosen")
    if searched:
        figures.searches, _ = searches.plot_searches(
            score, [c for c in configs if c.optimizer in searched], chosen, result.plot_dir, formats)
        result.written += figures.searches
    labels = {optimizer: config.label(keys) for optimizer, config in chosen.items()}
    figures.curves, rows = curves.plot_curves(task, score, chosen, labels, result.plot_dir, formats)
    if not rows:
        result.notes.append(f"learning curves: no run of task '{task}' logged {curves.TRAIN_METRIC} or "
                            f"{score.target_metric} in logs/metrics.csv")
    result.profile_rows += _profile_rows(result, performance_profiles.SCORE, task,
                                         {o: selection.ranked_value(c, score.mode) for o, c in chosen.items()},
                                         score.mode)
    if score.target is not None and score.target_metric:
        figures.target_rows = time_to_target.target_rows(score, configs, keys)
        figures.targets = time_to_target.plot_targets(score, figures.target_rows, result.plot_dir, formats)
        result.profile_rows += _profile_rows(result, performance_profiles.STEPS, task,
                                             time_to_target.fastest(figures.target_rows), "min")
    figures.pictures = task_figures.collect_pictures(task, chosen, result.plot_dir)
    result.written += figures.curves + figures.targets + [picture.path for picture in figures.pictures]


def _profile_rows(result: Analysis, measure: str, task: str, values: dict[str, float | None], mode: str):
    from framework.results.performance_profiles import ratios

    rows, note = ratios(measure, task, values, mode)
    if note:
        result.notes.append(f"performance profile: {note}")
    return rows
