"""The two figures of a search (searches.py), drawn from its trial rows.

    best so far   x: trial, in the order run; y: the validation metric. A step line per optimizer: the seed
                  mean of the configuration chosen among the trials so far; dashed, that configuration's
                  test score; dots, each trial's own value.
    scatter       one panel per varying hyperparameter: each trial's validation value against its value of
                  the hyperparameter (log axis when the values span more than two decades), a red ring on
                  each optimizer's chosen configuration.

A trial without a value (a diverged seed, failed, pruned, still running) is not dropped: it is a marker on
the worst edge of the panel (the bottom when higher is better), its shape saying what happened.
matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.results.figure_files import save
from framework.results.selection import Scoring, hashable, label, sort_key

EDGE_MARKERS = {"diverged": "x", "failed": "X", "pruned": "v"}  # anything else (running, ...): "s"
_OTHER_MARKER = "s"
_CHOSEN_EDGE = "red"  # the ring on the chosen configuration, as the heatmap's box
_LOG_SPAN = 100.0  # values spanning more than two decades get a log axis


def draw_best_so_far(score: Scoring, rows: list[dict[str, Any]], stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib

    with matplotlib.rc_context({"text.usetex": False}):  # built and saved without LaTeX, whatever the user's rc
        return save(best_so_far_figure(score, rows), stem, formats)


def draw_scatter(score: Scoring, rows: list[dict[str, Any]], keys: list[str], stem: Path,
                 formats: Sequence[str]) -> list[Path]:
    import matplotlib

    with matplotlib.rc_context({"text.usetex": False}):
        return save(scatter_figure(score, rows, keys), stem, formats)


def best_so_far_figure(score: Scoring, rows: list[dict[str, Any]]):
    """The best-so-far Figure (one axes; tests read its lines back)."""
    import matplotlib
    from matplotlib.figure import Figure

    colours = matplotlib.colormaps["tab10"]
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.subplots()
    for i, optimizer in enumerate(_optimizers(rows)):
        own = [r for r in rows if r["optimizer"] == optimizer]
        colour = colours(i % 10)
        trials = [r["trial"] for r in own]
        ax.plot(trials, [_nan(r["best_so_far"]) for r in own], drawstyle="steps-post", color=colour, linewidth=2,
                label=f"{optimizer}: best so far")
        ax.plot(trials, [_nan(r["best_so_far_test"]) for r in own], drawstyle="steps-post", color=colour,
                linewidth=1, linestyle="--", label=f"{optimizer}: its {score.column}")
        _trial_points(ax, [(r["trial"], r) for r in own], colour, score.select_mode)
    _outcome_legend(ax, rows)
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(score.select_column)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    better = "higher" if score.select_mode == "max" else "lower"
    fig.suptitle(f"{score.task}: {score.select_column} of the best configuration so far ({better} is better), "
                 f"dashed: its {score.column}\n"
                 "dots: each trial's seed mean (hollow: not every seed finished); on the edge: trials without a score",
                 fontsize=9)
    return fig


def scatter_figure(score: Scoring, rows: list[dict[str, Any]], keys: list[str]):
    """The scatter Figure: a panel per key in `keys`, at most three to a row."""
    import matplotlib
    from matplotlib.figure import Figure

    colours = matplotlib.colormaps["tab10"]
    columns = min(3, len(keys))
    lines = math.ceil(len(keys) / columns)
    fig = Figure(figsize=(4.4 * columns + 0.4, 3.6 * lines + 0.6), layout="constrained")
    axes = fig.subplots(lines, columns, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        positions, ticks = _positions([r[key] for r in rows if r.get(key) is not None])
        for i, optimizer in enumerate(_optimizers(rows)):
            own = [r for r in rows if r["optimizer"] == optimizer and r.get(key) is not None]
            points = [(positions(r[key]), r) for r in own]
            _trial_points(ax, points, colours(i % 10), score.select_mode, label=optimizer)
            for x, row in points:
                if row["chosen"]:
                    y, transform = _where(ax, row, score.select_mode)
                    ax.plot([x], [y], "o", markersize=13, markerfacecolor="none", markeredgecolor=_CHOSEN_EDGE,
                            markeredgewidth=2, transform=transform, clip_on=False)
        _x_axis(ax, key, ticks, [r[key] for r in rows if r.get(key) is not None])
        ax.set_ylabel(score.select_column)
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    _outcome_legend(axes[0], rows, chosen=True)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{score.task}: {score.select_column} of each trial (seed mean; hollow: not every seed finished) "
                 "against each hyperparameter\nred ring: each optimizer's configuration chosen on validation; "
                 "on the edge: trials without a score", fontsize=9)
    return fig


def _trial_points(ax, points: list[tuple[float, dict[str, Any]]], colour, mode: str, label: str | None = None) -> None:
    """Each trial's value as a dot; the trials without one as markers on the worst edge."""
    for complete in (True, False):  # hollow: a trial whose seeds did not all finish (the mean of those that did)
        scored = [(x, r["value"]) for x, r in points if r["value"] is not None and r["complete"] == complete]
        ax.plot([x for x, _ in scored], [v for _, v in scored], "o", color=colour, alpha=0.55, markersize=4,
                linestyle="none", label=label if complete else None, markerfacecolor=None if complete else "none")
    for x, row in points:
        if row["value"] is None:
            y, transform = _where(ax, row, mode)
            ax.plot([x], [y], EDGE_MARKERS.get(row["outcome"], _OTHER_MARKER), color=colour, markersize=6,
                    linestyle="none", transform=transform, clip_on=False)


def _where(ax, row: dict[str, Any], mode: str):
    """(y, transform) of a trial: its value in data coordinates, or the worst edge in axes coordinates."""
    if row["value"] is not None:
        return row["value"], ax.transData
    return (0.02 if mode == "max" else 0.98), ax.get_xaxis_transform()


def _outcome_legend(ax, rows: list[dict[str, Any]], chosen: bool = False) -> None:
    """Grey legend entries for the edge markers that occur (and the chosen ring), labelled by outcome."""
    outcomes = sorted({r["outcome"] for r in rows if r["value"] is None})
    for name in outcomes:
        ax.plot([], [], EDGE_MARKERS.get(name, _OTHER_MARKER), color="0.35", linestyle="none",
                label=f"{name} (at the worst edge)")
    if chosen:
        ax.plot([], [], "o", markersize=9, markerfacecolor="none", markeredgecolor=_CHOSEN_EDGE, markeredgewidth=2,
                linestyle="none", label="chosen on validation")


def _positions(values: list[Any]):
    """(position of a value on the x axis, tick labels or None): numbers are their own position; any
    other value (a choice of names, a list) is placed at its index among the distinct values."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float, None
    distinct = sorted({hashable(v) for v in values}, key=sort_key)
    return (lambda v: float(distinct.index(hashable(v)))), [label(v) for v in distinct]


def _x_axis(ax, key: str, ticks: list[str] | None, values: list[Any]) -> None:
    ax.set_xlabel(key)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks, rotation=45 if len(ticks) > 4 else 0)
        return
    numbers = [float(v) for v in values]
    if numbers and min(numbers) > 0 and max(numbers) / min(numbers) > _LOG_SPAN:
        ax.set_xscale("log")


def _optimizers(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["optimizer"] for r in rows})


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
