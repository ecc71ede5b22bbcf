"""The results table: one row per run x checkpoint x metric (long format), as CSV and Parquet.

    task  optimizer  run_id  seed  state  error  checkpoint  metric    value   <hyperparameters>  env.*
    digits adamw_... 4f52a9.. 1    done          best        test_acc  0.972   optimizer.learning_rate=...

`checkpoint` is `best`, `last` (scores of that checkpoint) or `train` (time_s, steps, step_time_ms, ...);
entries of scores.json that are not numbers (train/precision) are left out: the config has them.
A run without scores (failed, diverged, running) has one row with empty checkpoint, metric and value, so
that every run is in the table. Hyperparameters are the config keys that change what a run computes
(dotted, as on the command line; `engine.seed` is the `seed` column), and a search trial's `search.study`,
`search.strategy` and `search.trial`; the environment columns come from
each run's env.json (`framework.training.environment`). pandas is imported inside the functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from framework.config import flatten
from framework.config.grid import NON_IDENTITY
from framework.results.run_folder import ENV_FILE
from framework.results.run_index import load_runs_indexed

RUN_COLUMNS = ("task", "optimizer", "run_id", "seed", "state", "error")
SCORE_COLUMNS = ("checkpoint", "metric", "value")
TABLE_NAME = "results"  # results.csv and results.parquet
# In load_runs' records but not hyperparameters: the run's place on disk and the plugin names (columns
# task and optimizer already say them).
_NOT_HYPERPARAMETERS = {"run_dir", "task.name", "optimizer.name", "engine.seed"}


def load_table(output_dir: str | Path, runs: list[dict[str, Any]] | None = None):  # -> pandas.DataFrame
    """The long-format table of every run under `output_dir` (`runs`: its `load_runs` records, if they
    were read already; otherwise they are read through the folder's index, `run_index.load_runs_indexed`)."""
    import numpy as np
    import pandas as pd

    runs = load_runs_indexed(output_dir) if runs is None else runs
    if not runs:
        return pd.DataFrame(columns=[*RUN_COLUMNS, *SCORE_COLUMNS])
    # Whole columns at a time: a Python loop over 10,000 runs x 70 keys would cost seconds.
    wide = pd.DataFrame(runs)
    wide["seed"] = wide["engine.seed"] if "engine.seed" in wide else None
    score_keys = [c for c in wide.columns if "/" in c]
    # A score entry that is text (train/precision: "32-true") is no number: it is left out, not turned into NaN.
    present = np.zeros((len(runs), len(score_keys)), dtype=bool)
    for i, run in enumerate(runs):
        present[i] = [key in run and _numeric_or_none(run[key]) for key in score_keys]
    unscored = ~present.any(axis=1)
    # One row per present score, plus one empty row per run without any, in run order.
    runs_index, key_index = np.nonzero(np.column_stack([present, unscored]))
    values = np.column_stack([pd.to_numeric(wide[k], errors="coerce").to_numpy(float) for k in score_keys]
                             + [np.full(len(runs), np.nan)])[runs_index, key_index]
    split = [key.split("/", 1) for key in score_keys] + [[None, None]]
    scores = pd.DataFrame({
        "checkpoint": np.array([c for c, _ in split], dtype=object)[key_index],
        "metric": np.array([m for _, m in split], dtype=object)[key_index],
        "value": values,
    })
    columns = [c for c in wide.columns if "/" not in c and c not in _NOT_HYPERPARAMETERS and not _non_identity(c)]
    runs_frame = _parquet_safe(pd.concat([wide[columns], _environment(wide["run_dir"])], axis=1))
    table = pd.concat([runs_frame.iloc[runs_index].reset_index(drop=True), scores], axis=1)
    rest = [c for c in table.columns if c not in RUN_COLUMNS and c not in SCORE_COLUMNS]
    hyper = sorted(c for c in rest if not c.startswith("env."))
    env_columns = sorted(c for c in rest if c.startswith("env."))
    return table[[c for c in RUN_COLUMNS if c in table.columns] + list(SCORE_COLUMNS) + hyper + env_columns]


def _environment(run_dirs):  # -> pandas.DataFrame, one row per run: env.* columns from env.json
    import pandas as pd

    parsed: dict[str, dict[str, Any]] = {}  # the runs of one grid mostly share one env.json text
    rows = []
    for run_dir in run_dirs:
        try:
            with open(os.path.join(run_dir, ENV_FILE), encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, TypeError):
            rows.append({})
            continue
        if text not in parsed:
            try:
                parsed[text] = {f"env.{k}": v for k, v in flatten(json.loads(text)).items()}
            except json.JSONDecodeError:
                parsed[text] = {}
        rows.append(parsed[text])
    return pd.DataFrame(rows, index=run_dirs.index)


def write_table(table, directory: str | Path) -> list[Path]:
    """Write `results.csv` and `results.parquet` into `directory`; return their paths."""
    try:
        import pyarrow  # noqa: F401  (pandas' Parquet engine)
    except ImportError:
        from framework.errors import FrameworkError

        raise FrameworkError("writing results.parquet needs pyarrow: pip install pyarrow") from None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = directory / f"{TABLE_NAME}.csv", directory / f"{TABLE_NAME}.parquet"
    table.to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def _numeric_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _non_identity(key: str) -> bool:
    if key.startswith("search."):  # which trial of which study: not what a run computes, but worth a column
        return False
    return any(key == prefix or key.startswith(prefix + ".") for prefix in NON_IDENTITY)


def _parquet_safe(frame):
    """Columns Parquet can store: a column mixing types (a list value, an int in one run and a string in
    another) becomes text, lists and mappings as JSON; a column of numbers stays numeric."""
    import pandas as pd

    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column].dropna()
        kinds = {type(v) for v in values}
        if kinds <= {str} or kinds <= {bool}:
            continue
        if kinds <= {int, float}:
            frame[column] = pd.to_numeric(frame[column])
            continue
        frame[column] = frame[column].map(_text, na_action="ignore")
    return frame


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
