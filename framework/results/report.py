"""One self-contained HTML page of an output folder: every figure and table of `framework plot`, the
runs' states with each failure's error, the grid's configuration and the environment.

Works offline and as a single file: images are embedded as base64 `data:` URIs, the CSS is inline, and
nothing is loaded from anywhere else (no script, font or stylesheet). The figures are the PNGs written by
`analysis.analyze` into the plot folder.
"""

from __future__ import annotations

import base64
import html
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from framework.results.analysis import Analysis
from framework.results.run_folder import STATES, read_status
from framework.results.selection import (
    PROTOCOL_VERSION,
    by_task,
    configurations,
    hashable,
    label,
    sort_key,
    varying_keys,
)

REPORT_FILE = "report.html"
FAILED = ("failed", "diverged")
MAX_FAILURES = 200  # listed with their tracebacks; a page for a 10,000-run grid stays small enough to open
_ENV_SHOWN = ("env.code.git_commit", "env.code.git_dirty", "env.code.framework", "env.packages.torch",
              "env.packages.lightning", "env.device", "env.python", "env.host")

_HEATMAP = ("the task's test score over two hyperparameters, one panel per optimizer; each cell the mean ± std over "
            "seeds, a red box on each optimizer's configuration chosen on the validation metric (dashed: none "
            "finished every seed), grey cells where no seed finished")
_BEST_SO_FAR = ("a search's trials in the order they were run: the step line is the validation seed mean of the "
                "configuration chosen among the trials so far, dashed its test score, dots each trial's own value; "
                "trials without a score (diverged, failed, pruned) are markers on the worst edge")
_SCATTER = ("each trial's validation seed mean against each hyperparameter the search varied, one colour per "
            "optimizer, a red ring on each optimizer's chosen configuration; trials without a score on the worst edge")
_CURVES = ("training loss and the validation metric over steps for each optimizer's chosen configuration; line: "
           "mean over seeds, band: lowest to highest seed")
_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
nav a { margin-right: 1em; } .muted { color: #666; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fdecec; } tr.diverged td { background: #fff4e0; }
.state-done { color: #1b7f3b; } .state-failed { color: #b3261e; } .state-diverged { color: #a15c00; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; } .note { background: #fff8d6; padding: .4em .8em; border-radius: 4px; }
pre { background: #f6f6f8; padding: .6em; overflow-x: auto; font-size: 12px; }
details summary { cursor: pointer; color: #444; }
"""


def write_report(result: Analysis, path: str | Path | None = None) -> Path:
    """Write the page for `result` (default `<output_dir>/report.html`); return its path."""
    path = Path(path) if path is not None else result.output_dir / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result), encoding="utf-8")
    return path


def render(result: Analysis) -> str:
    sections = [
        ("status", "Status", _status(result)),
        ("grid", "Grid", _grid(result)),
        ("best", "Best configurations", _best(result)),
        ("heatmaps", _heatmaps_title(result), _heatmaps_and_searches(result)),
        ("curves", "Learning curves", _figures(result, "curves", "no learning curve was logged", _CURVES)),
        ("pictures", "Task pictures", _pictures(result)),
        ("targets", "Time to target", _targets(result)),
        ("profiles", "Performance profiles", _profiles(result)),
        ("environment", "Environment", _environment(result)),
        ("files", "Files", _files(result)),
    ]
    nav = " ".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{title}</h2>\n{content}</section>' for key, title, content in sections)
    notes = "".join(f'<p class="note">{_e(note)}</p>' for note in result.notes)
    from framework import __version__

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>framework report: {_e(result.output_dir.name)}</title>
<style>{_CSS}</style></head>
<body>
<h1>framework report: {_e(str(result.output_dir))}</h1>
<p class="muted">{len(result.runs)} runs; made {_e(time.strftime('%Y-%m-%d %H:%M'))} by framework {_e(__version__)};
results follow <span class="protocol">protocol v{PROTOCOL_VERSION}</span> (docs/protocol.md).</p>
<nav>{nav}</nav>
{notes}
{body}
</body></html>
"""


# ---------------------------------------------------------------- sections


def _status(result: Analysis) -> str:
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for run in result.runs:
        counts[(run["task"], run["optimizer"])][str(run.get("state"))] += 1
    seen = {s for c in counts.values() for s in c}
    states = [s for s in STATES if s in seen] + sorted(seen - set(STATES))
    rows = [[task, optimizer, *(c.get(s, 0) for s in states), sum(c.values())]
            for (task, optimizer), c in sorted(counts.items())]
    total = Counter(str(run.get("state")) for run in result.runs)
    rows.append(["all", "", *(total.get(s, 0) for s in states), len(result.runs)])
    summary = ", ".join(f"{total[s]} {s}" for s in states)
    parts = [f"<p>{_e(summary)}.</p>", _table(["task", "optimizer", *states, "runs"], rows, "status-table")]
    failures = [run for run in result.runs if run.get("state") in FAILED]
    if failures:
        parts.append(f"<h3>Failed and diverged runs ({len(failures)})</h3>")
        parts.append(_failures(result, failures[:MAX_FAILURES]))
        if len(failures) > MAX_FAILURES:
            parts.append(f"<p>{len(failures) - MAX_FAILURES} more: the state and error column of results.csv "
                         "list every run.</p>")
    else:
        parts.append("<p>No run failed or diverged.</p>")
    return "\n".join(parts)


def _failures(result: Analysis, failures: list[dict[str, Any]]) -> str:
    keys = {task: figures.keys for task, figures in result.tasks.items()}
    rows, classes = [], []
    for run in failures:
        values = ", ".join(f"{k}={label(hashable(run.get(k)))}" for k in [*keys.get(run["task"], []), "engine.seed"])
        status = read_status(Path(run["run_dir"])) or {}
        error = _e(run.get("error") or "(no error recorded)")
        if status.get("traceback"):
            error += f"<details><summary>traceback</summary><pre>{_e(status['traceback'])}</pre></details>"
        rows.append([run["task"], run["optimizer"], run["run_id"], _state(run["state"]), values, _Raw(error)])
        classes.append(run["state"])
    return _table(["task", "optimizer", "run", "state", "values", "error"], rows, "failures-table", classes)


def _grid(result: Analysis) -> str:
    parts = []
    for task, runs in by_task(result.runs).items():
        optimizers = sorted({run["optimizer"] for run in runs})
        seeds = sorted({hashable(run.get("engine.seed")) for run in runs}, key=sort_key)
        # a task that could not be scored (no evaluation.plot.metric) still has a grid to show
        keys = result.tasks[task].keys if task in result.tasks else varying_keys(configurations(runs))
        axes = [["optimizers", ", ".join(optimizers)], ["engine.seed", ", ".join(label(s) for s in seeds)]]
        axes += _studies(runs)
        for key in keys:
            values = sorted({hashable(run.get(key)) for run in runs}, key=sort_key)
            axes.append([key, _values_text(values)])
        fixed = _fixed_settings(runs, set(keys))
        parts.append(f"<h3>{_e(task)}: {len(runs)} runs</h3>")
        parts.append(_table(["axis", "values"], axes, "grid-table"))
        parts.append("<details><summary>settings shared by every run of this task "
                     f"({len(fixed)})</summary>{_table(['key', 'value'], fixed, 'settings-table')}</details>")
    return "\n".join(parts)


def _studies(runs: list[dict[str, Any]]) -> list[list[str]]:
    """A `search` row when runs were drawn by searches: each study, its strategy and number of trials."""
    trials: dict[tuple, set] = defaultdict(set)
    for run in runs:
        if run.get("search.study") is not None:
            trials[(str(run["search.study"]), str(run.get("search.strategy")))].add((run["optimizer"], run.get("search.trial")))
    text = "; ".join(f"{study} ({strategy}, {len(numbers)} trials)" for (study, strategy), numbers in sorted(trials.items()))
    return [["search", text]] if text else []


def _values_text(values: list[Any]) -> str:
    """The values of an axis; a search's many numbers as their count and range."""
    if len(values) > 12 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return f"{len(values)} values from {label(values[0])} to {label(values[-1])}"
    return ", ".join(label(v) for v in values)


def _fixed_settings(runs: list[dict[str, Any]], varying: set[str]) -> list[list[str]]:
    skip = {"task", "optimizer", "run_id", "state", "error", "run_dir", "engine.seed", "optimizer.name"}
    keys = sorted(k for k in set().union(*runs)
                  if "/" not in k and k not in skip and k not in varying and not k.startswith("search."))
    rows = []
    for key in keys:
        values = {hashable(run.get(key)) for run in runs}
        rows.append([key, label(next(iter(values))) if len(values) == 1 else "(differs by optimizer)"])
    return rows


def _best(result: Analysis) -> str:
    if not result.best_rows:
        return "<p>No task has a score to compare.</p>"
    rows = result.best_table()
    explain = ("<p>Each optimizer's configuration chosen by its seed mean of a validation metric (the selected by "
               "column), then reported on the test metric (the metric column; lower or higher is better as the task "
               "says); ± is the standard deviation over seeds and the 95% interval a Student-t interval of the "
               "mean. A configuration whose seeds did not all finish is chosen only when none of the optimizer's "
               "did (marked incomplete, with what happened to its seeds); a diverged seed is the worst score. Rank 1 "
               f"is the best optimizer on the task. Protocol v{PROTOCOL_VERSION}: docs/protocol.md.</p>")
    return explain + _table(list(rows[0]), [list(r.values()) for r in rows], "best-table")


def _figures(result: Analysis, kind: str, empty: str, caption: str) -> str:
    parts = []
    for figures in result.tasks.values():
        for path in getattr(figures, kind):
            if path.suffix == ".png":
                parts.append(_image(path, f"{path.stem}: {caption}"))
    return "\n".join(parts) or (f"<p>{_e(empty)}.</p>" if empty else "")


def _heatmaps_title(result: Analysis) -> str:
    return "Heatmaps and searches" if any(f.searches for f in result.tasks.values()) else "Heatmaps"


def _heatmaps_and_searches(result: Analysis) -> str:
    """Grids as heatmaps, then the optimizers whose runs are a search (or no grid) as best so far and scatter."""
    parts = [_figures(result, "heatmaps", "", _HEATMAP)]
    for figures in result.tasks.values():
        parts += [_image(path, f"{path.stem}: {_BEST_SO_FAR if path.stem.endswith('_best_so_far') else _SCATTER}")
                  for path in figures.searches if path.suffix == ".png"]
    return "\n".join(p for p in parts if p) or "<p>no heatmap was drawn.</p>"


def _pictures(result: Analysis) -> str:
    parts = [_image(picture.path, picture.caption) for figures in result.tasks.values() for picture in figures.pictures]
    return "\n".join(parts) or ("<p>No task drew pictures of its runs (a task draws them at test time with "
                                 "<code>TaskModel.save_figure</code>).</p>")


def _targets(result: Analysis) -> str:
    parts = []
    for task, figures in result.tasks.items():
        if figures.target is None:
            continue
        parts += [_image(p, f"{p.stem}: optimizer steps until {figures.target_metric} reaches {figures.target:g}, "
                            "fastest configuration of each optimizer, mean over seeds") for p in figures.targets if p.suffix == ".png"]
        rows = [[r["optimizer"], r["configuration"], f"{r['n_reached']}/{r['n_done']}",
                 "not reached" if r["steps"] is None else f"{r['steps']:.0f}",
                 "" if r["seconds"] is None else f"{r['seconds']:.2f}", "yes" if r["fastest"] else ""]
                for r in figures.target_rows]
        parts.append(f"<details><summary>{_e(task)}: every configuration</summary>"
                     f"{_table(['optimizer', 'configuration', 'seeds reached', 'steps', 'seconds', 'fastest'], rows, 'target-table')}"
                     "</details>")
    return "\n".join(parts) or "<p>No task defines <code>evaluation.target</code>.</p>"


def _profiles(result: Analysis) -> str:
    if not result.profile:
        return "<p>No performance profile was drawn.</p>"
    parts = [_image(p, "for each optimizer, the share of tasks on which its result is within a factor tau of the "
                       "best optimizer's (score: the best configuration's seed mean; steps to target)")
             for p in result.profile if p.suffix == ".png"]
    rows = [[r["measure"], r["task"], r["optimizer"], _g(r["value"]), _g(r["best"]), _g(r["ratio"])]
            for r in result.profile_rows]
    parts.append(_table(["measure", "task", "optimizer", "value", "best", "ratio"], rows, "profile-table"))
    return "\n".join(parts)


def _environment(result: Analysis) -> str:
    table = result.table
    columns = [c for c in _ENV_SHOWN if table is not None and c in table.columns]
    if not columns:
        return "<p>No run recorded its environment (env.json; runs made before it was recorded have none).</p>"
    runs = table.drop_duplicates("run_id")[columns].astype("string").fillna("-")
    groups = runs.value_counts(dropna=False).reset_index(name="runs")
    rows = [[*(str(v) for v in row[:-1]), int(row[-1])] for row in groups.itertuples(index=False)]
    return ("<p>What the runs ran on, from each run's env.json; one row per distinct combination.</p>"
            + _table([c.removeprefix("env.") for c in columns] + ["runs"], rows, "environment-table"))


def _files(result: Analysis) -> str:
    rows = [[_rel(path, result.output_dir)] for path in result.written]
    return _table(["written by this report into the plot folder"], rows, "files-table")


# ---------------------------------------------------------------- HTML pieces


class _Raw(str):
    """Cell content that is HTML already (escaped where it came from)."""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _g(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _state(state: str) -> "_Raw":
    return _Raw(f'<span class="state-{_e(state)}">{_e(state)}</span>')


def _table(header: list[str], rows: list[list[Any]], kind: str, classes: list[str] | None = None) -> str:
    """A table of class `kind` (several tables can share one, e.g. a grid table per task)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(classes[i])}"' if classes else ""
        cells = "".join(_cell(c) for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="{kind}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cell(value: Any) -> str:
    if isinstance(value, _Raw):
        return f"<td>{value}</td>"
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{_e(value)}</td>"


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
