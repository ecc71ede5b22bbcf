"""Heatmaps of each task's target score over two hyperparameters, one panel per optimizer.

    results (load_runs) -> cells (mean and std over seeds) -> one figure per task + a long-form CSV

Knows nothing about any task: what to show comes from each run's resolved `evaluation` section
(`evaluation.checkpoint`, `evaluation.plot.*`). The cells show the test metric; the red box marks each
optimizer's configuration chosen on the validation metric (selection.pick, docs/protocol.md), dashed
when no configuration of that optimizer finished every seed. Every config key that varies within a task besides the
two axes and the seed must be handled explicitly with `split` or `aggregate`, so that no figure silently
mixes runs that are not comparable. matplotlib, numpy and pandas are imported inside the functions.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError
from framework.results.figure_files import file_stem, save
from framework.results.run_folder import STATES, load_runs
from framework.results.selection import (
    Configuration,
    Scoring,
    add_run,
    hashable,
    hyperparameters,
    label,
    pick,
    scoring,
    seed_count,
    selection_key,
    sort_key,
)

SEED = "engine.seed"
_BEST_EDGE = "red"  # box around each optimizer's best cell
_MISSING_FILL = "0.88"  # grey of cells where no seed finished


@dataclass(frozen=True)
class _Settings:
    """What one task's heatmap shows, read from its runs' `evaluation` section and the arguments."""

    score: Scoring  # the columns: test score shown in the cells, validation score the box is chosen by
    column: str  # the score column, e.g. best/test_acc
    mode: str  # max or min: which direction is better
    spec: str  # format spec of the numbers in the cells
    limits: tuple[float, float] | None
    x: str
    y: str


def plot_heatmaps(
    output_dir: str | Path,
    plot_dir: str | Path | None = None,
    x: str | None = None,
    y: str | None = None,
    split: Sequence[str] = (),
    aggregate: Sequence[str] = (),
    formats: Sequence[str] = ("png", "pdf"),
    runs: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write `<task>_heatmap.<format>` (one per `split` value combination, suffixed `__key=value`) and
    `<task>_heatmap.csv` into `plot_dir` (default `<output_dir>/plots`); return the written paths.

    A cell is the mean ± sample std over seeds of the runs that are `done`; runs that failed, diverged
    or still run are counted (`n_done/n_runs`). `aggregate` keys are reduced to one value per cell, the
    one chosen on the validation metric (selection.pick). `runs` are the folder's `load_runs` records when the caller read them already.
    Raises FrameworkError for an empty folder, an unknown column or a config key that varies within a
    task without being split or aggregated; nothing is written then.
    """
    import pandas as pd

    output_dir = Path(output_dir)
    runs = load_runs(output_dir) if runs is None else runs
    if not runs:
        raise FrameworkError(f"no runs found in '{output_dir}' (expected <task>/<optimizer>/<run_id>/config.yaml)")
    columns = set().union(*runs)
    for key in (*split, *aggregate):
        _require_column(key, columns, "any run")
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_task[run["task"]].append(run)
    plans = [_plan(task, by_task[task], x, y, tuple(split), tuple(aggregate)) for task in sorted(by_task)]
    plot_dir = Path(plot_dir) if plot_dir is not None else output_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for task, settings, figures, aggregated in plans:
        rows = []
        for split_values, cells in figures:
            stem = f"{task}_heatmap" + "".join(f"__{k}={label(v)}" for k, v in split_values.items())
            title = _title(task, settings, split_values, aggregated)
            written += _draw(cells, settings, title, file_stem(plot_dir, stem), formats)
            rows += [_csv_row(task, settings, split_values, aggregated, cell) for cell in cells]
        written.append(plot_dir / f"{task}_heatmap.csv")
        pd.DataFrame(rows).to_csv(written[-1], index=False)
    return written


def _plan(task, runs, x, y, split, aggregate):
    """Validate one task and group its runs: (task, settings, [(split values, cells)], aggregate keys)."""
    settings = _settings(task, runs, x, y)
    columns = set().union(*runs)
    for key in (settings.x, settings.y):
        _require_column(key, columns, f"the runs of task '{task}'")
    split = tuple(k for k in split if k in columns)
    aggregate = tuple(k for k in aggregate if k in columns)
    varying = _varying(runs, {settings.x, settings.y, SEED, *split, *aggregate})
    if varying:
        shown = "; ".join(f"{k} ({', '.join(label(v) for v in values[:4])})" for k, values in varying.items())
        key = next(iter(varying))
        raise FrameworkError(
            f"task '{task}': config keys vary besides {settings.x} and {settings.y}: {shown}; say how to show "
            f"them with --split {key} (one figure per value) or --aggregate {key} (best value per cell)"
        )
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[tuple(hashable(run.get(k)) for k in split)].append(run)
    n_seeds = seed_count(runs)
    figures = [
        (dict(zip(split, key)), _cells(groups[key], settings, aggregate, n_seeds))
        for key in sorted(groups, key=lambda k: [sort_key(v) for v in k])
    ]
    return task, settings, figures, aggregate


def _settings(task: str, runs: list[dict[str, Any]], x: str | None, y: str | None) -> _Settings:
    score, first = scoring(task, runs), runs[0]
    limits = first.get("evaluation.plot.limits")
    if limits is not None and len(limits) != 2:
        raise FrameworkError(f"task '{task}': evaluation.plot.limits must be [low, high] or null, got {limits}")
    return _Settings(
        score=score,
        column=score.column,
        mode=score.mode,
        spec=score.spec,
        limits=None if limits is None else (float(limits[0]), float(limits[1])),
        x=x or first.get("evaluation.plot.x") or "optimizer.learning_rate",
        y=y or first.get("evaluation.plot.y") or "optimizer.weight_decay",
    )


def _require_column(key: str, columns: set[str], where: str) -> None:
    if key not in columns:
        close = difflib.get_close_matches(key, sorted(columns), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise FrameworkError(f"no column '{key}' in {where}{hint}")


def _varying(runs: list[dict[str, Any]], handled: set[str]) -> dict[str, list[Any]]:
    """Config keys with more than one value among the runs of one optimizer, with their values."""
    # Scores (best/test_acc), bookkeeping and keys that do not change what a run computes are never "varying".
    keys = [k for k in hyperparameters(runs) if k not in handled]
    varying = {}
    for key in keys:
        per_optimizer: dict[str, set] = defaultdict(set)
        for run in runs:
            per_optimizer[run["optimizer"]].add(hashable(run.get(key)))
        if any(len(values) > 1 for values in per_optimizer.values()):
            varying[key] = sorted(set().union(*per_optimizer.values()), key=sort_key)
    return varying


def _cells(runs, settings: _Settings, aggregate: tuple[str, ...], n_seeds: int) -> list[dict[str, Any]]:
    """One cell per (optimizer, x, y): seed statistics; `aggregate` keys reduced to the value chosen on
    the validation metric; `box` on each optimizer's chosen cell."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        key = (run["optimizer"], hashable(run.get(settings.x)), hashable(run.get(settings.y)))
        groups[key + tuple(hashable(run.get(k)) for k in aggregate)].append(run)
    options: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for key, members in groups.items():
        cell = _summarize(members, settings.score, n_seeds)
        cell.update(optimizer=key[0], x=key[1], y=key[2], chosen=dict(zip(aggregate, key[3:])), box=False)
        options[key[:3]].append(cell)
    cells = []
    for own in options.values():
        cell = min(own, key=lambda c: selection_key(c["config"], settings.score.select_mode))
        if cell["mean"] is None and cell["select_mean"] is None:  # nothing finished anywhere: count every run
            cell.update(n_runs=sum(c["n_runs"] for c in own), states=sum((c["states"] for c in own), Counter()),
                        chosen=dict.fromkeys(aggregate))
        cells.append(cell)
    for optimizer in {c["optimizer"] for c in cells}:
        own = [c for c in cells if c["optimizer"] == optimizer]
        chosen = pick([c["config"] for c in own], settings.score.select_mode)
        boxed = next((c for c in own if c["config"] is chosen), None)  # None: every cell pruned
        if boxed is not None:
            boxed["box"] = boxed["select_mean"] is not None  # no validation score anywhere: nothing to box
    return sorted(cells, key=lambda c: (c["optimizer"], sort_key(c["x"]), sort_key(c["y"])))


def _summarize(runs: list[dict[str, Any]], score: Scoring, n_seeds: int) -> dict[str, Any]:
    config = Configuration(score.task, runs[0]["optimizer"], {}, n_seeds=n_seeds)
    for run in runs:
        add_run(config, run, score)
    return {"config": config, "mean": config.mean, "std": config.std, "n_done": config.n_done,
            "n_runs": config.n_runs, "states": config.states, "select_mean": config.select_mean}


def _draw(cells, settings: _Settings, title: str, stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib

    with matplotlib.rc_context({"text.usetex": False}):  # built and saved without LaTeX, whatever the user's rc
        return save(_figure(cells, settings, title), stem, formats)


def _figure(cells, settings: _Settings, title: str):
    """One task's heatmap Figure: a panel per optimizer, the colour scale shared (tests read it back).

    Each panel's axes are the values its own optimizer has: optimizers with different defaults (adamw's
    weight decay 0.01, lion's 0.1) would otherwise each fill only their own rows of shared axes."""
    import matplotlib
    import numpy as np
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    optimizers = sorted({c["optimizer"] for c in cells})
    axes_of = {o: _panel_axes([c for c in cells if c["optimizer"] == o]) for o in optimizers}
    n_x = max(len(xs) for xs, _ in axes_of.values())
    n_y = max(len(ys) for _, ys in axes_of.values())
    means = [c["mean"] for c in cells if c["mean"] is not None]
    low, high = settings.limits or ((min(means), max(means)) if means else (0.0, 1.0))
    norm = Normalize(low, high)
    cmap = matplotlib.colormaps["viridis" if settings.mode == "max" else "viridis_r"].with_extremes(bad="white")
    width = len(optimizers) * max(3.2, 0.95 * n_x + 1.0) + 1.6
    width = max(width, 0.08 * max(len(line) for line in title.splitlines()))  # the title's lines fit (10 pt)
    fig = Figure(figsize=(width, 0.65 * n_y + 2.4), layout="constrained")
    axes = fig.subplots(1, len(optimizers), squeeze=False)[0]
    for ax, optimizer in zip(axes, optimizers):
        own = [c for c in cells if c["optimizer"] == optimizer]
        xs, ys = axes_of[optimizer]
        grid = np.full((len(ys), len(xs)), np.nan)
        for c in own:
            grid[ys.index(c["y"]), xs.index(c["x"])] = np.nan if c["mean"] is None else c["mean"]
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", origin="lower")
        for c in own:
            _annotate(ax, c, xs.index(c["x"]), ys.index(c["y"]), settings.spec, cmap(norm(c["mean"] or 0.0)))
        _mark_best(ax, own, xs, ys)
        ax.set_title(optimizer)
        ax.set_xticks(range(len(xs)), [label(v) for v in xs], rotation=45 if len(xs) > 5 else 0)
        ax.set_xlabel(settings.x)
        ax.set_yticks(range(len(ys)), [label(v) for v in ys])
        if ax is axes[0] or axes_of[optimizer][1] != axes_of[optimizers[0]][1]:
            ax.set_ylabel(settings.y)  # repeated only where a panel's rows differ from the first panel's
    fig.colorbar(image, ax=list(axes), label=settings.column)
    fig.suptitle(title, fontsize=10)
    return fig


def _panel_axes(cells) -> tuple[list[Any], list[Any]]:
    """The x and y values one optimizer's cells have, in grid order."""
    return (sorted({c["x"] for c in cells}, key=sort_key), sorted({c["y"] for c in cells}, key=sort_key))


def _annotate(ax, cell: dict[str, Any], col: int, row: int, spec: str, rgba) -> None:
    from matplotlib.patches import Rectangle

    if cell["mean"] is None:
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor=_MISSING_FILL, edgecolor="0.6", hatch="//"))
        ax.text(col, row, _outcome(cell), ha="center", va="center", fontsize=8, color="0.2")
        return
    lines = [format(cell["mean"], spec)]
    if cell["std"] is not None:
        lines.append(f"± {format(cell['std'], spec)}")
    if cell["n_done"] < cell["n_runs"]:
        lines.append(f"({cell['n_done']}/{cell['n_runs']})")
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    color = "black" if luminance > 0.5 else "white"
    ax.text(col, row, "\n".join(lines), ha="center", va="center", fontsize=8, color=color)


def _mark_best(ax, cells, xs, ys) -> None:
    from matplotlib.patches import Rectangle

    for cell in cells:
        if cell["box"]:
            corner = (xs.index(cell["x"]) - 0.5, ys.index(cell["y"]) - 0.5)
            style = "-" if cell["config"].complete else "--"  # dashed: chosen among incomplete configurations
            ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor=_BEST_EDGE, linewidth=2.5, linestyle=style,
                                   clip_on=False))


def _outcome(cell: dict[str, Any]) -> str:
    """The word for a cell without a score: its most common unfinished state."""
    unfinished = Counter({s: n for s, n in cell["states"].items() if s != "done"})
    return unfinished.most_common(1)[0][0] if unfinished else "no score"


def _title(task: str, settings: _Settings, split_values: dict, aggregated: tuple[str, ...]) -> str:
    better = "higher" if settings.mode == "max" else "lower"
    chooser = "highest" if settings.score.select_mode == "max" else "lowest"
    lines = [f"{task}: {settings.column} ({better} is better), mean ± std over seeds",
             (f"box = each optimizer's configuration chosen by {chooser} {settings.score.select_column} "
              "(dashed: no configuration finished every seed)")]
    if split_values:
        lines.append(", ".join(f"{k}={label(v)}" for k, v in split_values.items()))
    if aggregated:
        lines.append(f"each cell: best over {', '.join(aggregated)}")
    return "\n".join(lines)


def _csv_row(task, settings: _Settings, split_values: dict, aggregated, cell: dict[str, Any]) -> dict[str, Any]:
    order = sorted(cell["states"], key=lambda s: (STATES.index(s) if s in STATES else len(STATES), s))
    states = ";".join(f"{s}={cell['states'][s]}" for s in order)
    return {
        "task": task, **split_values, "optimizer": cell["optimizer"],
        "x_key": settings.x, "x": cell["x"], "y_key": settings.y, "y": cell["y"],
        **{k: cell["chosen"].get(k) for k in aggregated},
        "metric": settings.column, "mean": cell["mean"], "std": cell["std"],
        "n_done": cell["n_done"], "n_runs": cell["n_runs"], "states": states,
        "select_metric": settings.score.select_column, "select_mean": cell["select_mean"],
        "complete": cell["config"].complete, "box": cell["box"],
    }
