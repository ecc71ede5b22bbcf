"""Learning curves: training loss and the validation metric over steps, per task x optimizer.

    chosen configuration per optimizer (selection.best, on the validation metric) -> logs/metrics.csv
    of its seeds -> mean and band

One figure per task with two panels (training loss; `task.target_metric`, e.g. val_acc), one line per
optimizer: the mean over the seeds of its best configuration, with a band from the lowest to the
highest seed at each step. A CSV beside it holds the plotted numbers. Only runs that are `done` are
drawn: the same ones that make the configuration's score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.results.figure_files import file_stem, save
from framework.results.run_folder import read_metrics
from framework.results.selection import Configuration, Scoring

TRAIN_METRIC = "train_loss"  # what TaskModel.log_train_loss logs


def curve_points(config: Configuration, metric: str) -> list[dict[str, Any]]:
    """Per logged step of `metric`: mean, min and max over the configuration's done seeds."""
    by_step: dict[float, list[float]] = defaultdict(list)
    for run in config.runs:
        if run.get("state") != "done":
            continue
        for row in read_metrics(Path(run["run_dir"])):
            if metric in row and "step" in row:
                by_step[row["step"]].append(row[metric])
    return [
        {"step": int(step), "mean": sum(values) / len(values), "min": min(values), "max": max(values),
         "n_seeds": len(values)}
        for step, values in sorted(by_step.items())
    ]


def plot_curves(task: str, score: Scoring, best: dict[str, Configuration], labels: dict[str, str],
                plot_dir: Path, formats: Sequence[str]) -> tuple[list[Path], list[dict[str, Any]]]:
    """Write `<task>_curves.<format>` and `<task>_curves.csv`; return the paths and the CSV rows.

    `best` maps each optimizer to its best configuration, `labels` each optimizer to that
    configuration's text. Nothing is written when no run logged either metric."""
    import pandas as pd

    metrics = [TRAIN_METRIC] + ([score.target_metric] if score.target_metric else [])
    rows: list[dict[str, Any]] = []
    for optimizer, config in sorted(best.items()):
        for metric in metrics:
            rows += [{"task": task, "optimizer": optimizer, "configuration": labels[optimizer], "metric": metric,
                      **point} for point in curve_points(config, metric)]
    if not rows:
        return [], []
    stem = file_stem(plot_dir, f"{task}_curves")
    paths = _draw(task, score, rows, metrics, stem, formats)
    paths.append(stem.with_name(f"{stem.name}.csv"))
    pd.DataFrame(rows).to_csv(paths[-1], index=False)
    return paths, rows


def _draw(task: str, score: Scoring, rows, metrics: list[str], stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib
    from matplotlib.figure import Figure

    optimizers = sorted({r["optimizer"] for r in rows})
    colours = matplotlib.colormaps["tab10"]
    with matplotlib.rc_context({"text.usetex": False}):
        fig = Figure(figsize=(5.2 * len(metrics), 3.8), layout="constrained")
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics):
            for i, optimizer in enumerate(optimizers):
                points = [r for r in rows if r["optimizer"] == optimizer and r["metric"] == metric]
                if not points:
                    continue
                steps = [p["step"] for p in points]
                colour = colours(i % 10)
                ax.plot(steps, [p["mean"] for p in points], color=colour, label=optimizer,
                        marker="o" if len(points) < 3 else None, markersize=3)
                ax.fill_between(steps, [p["min"] for p in points], [p["max"] for p in points], color=colour,
                                alpha=0.2, linewidth=0)
            if metric == score.target_metric and score.target is not None:
                ax.axhline(score.target, color="0.3", linestyle="--", linewidth=1, label=f"target {score.target:g}")
            if not ax.lines:
                ax.text(0.5, 0.5, f"no {metric} logged", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_xlabel("step")
            ax.set_ylabel(metric)
            ax.set_title(f"{'training loss' if metric == TRAIN_METRIC else 'validation ' + metric}", fontsize=10)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        fig.suptitle(f"{task}: configuration of each optimizer chosen by {score.select_column}; "
                     f"line = mean over seeds, band = lowest to highest seed", fontsize=9)
        return save(fig, stem, formats)
