"""The run directory: one folder per run that describes itself.

    <output>/<task>/<optimizer>/<run_id>/
        config.yaml      the resolved configuration
        status.json      state (running / done / failed / diverged), error and traceback, timings
        scores.json      {"best": {val_*, test_*}, "last": {...}, "train": {...}}
        checkpoints/     best-*.ckpt and last.ckpt
        logs/            Lightning's CSV logs (metrics.csv)

Every file is written atomically, so a killed process leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framework.config import flatten
from framework.yamlio import atomic_write_json, atomic_write_text, dump_yaml, load_yaml, read_json

STATES = ("running", "done", "failed", "diverged")
FINISHED = ("done", "diverged")  # outcomes that are results: never redone without --force
CONFIG_FILE, STATUS_FILE, SCORES_FILE = "config.yaml", "status.json", "scores.json"


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def last_checkpoint(run_dir: Path) -> Path | None:
    path = checkpoint_dir(run_dir) / "last.ckpt"
    return path if path.is_file() else None


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def read_config(run_dir: Path) -> dict[str, Any]:
    return load_yaml(run_dir / CONFIG_FILE)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(run_dir / STATUS_FILE)
    except (OSError, json.JSONDecodeError):
        return None


def write_status(run_dir: Path, state: str, **fields: Any) -> dict[str, Any]:
    """Record the run's state; keeps the fields of the previous status that are not replaced."""
    assert state in STATES, state
    status = read_status(run_dir) or {}
    status.update(fields)
    status.update(state=state, updated=time.time(), host=socket.gethostname(), pid=os.getpid())
    if state == "running":
        status.pop("error", None)
        status.pop("traceback", None)
    atomic_write_json(run_dir / STATUS_FILE, status)
    return status


def read_scores(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(run_dir / SCORES_FILE)
    except (OSError, json.JSONDecodeError):
        return None


def write_scores(run_dir: Path, scores: dict[str, Any]) -> None:
    atomic_write_json(run_dir / SCORES_FILE, scores)


def iter_run_dirs(output_dir: str | Path) -> Iterator[Path]:
    """Every run directory under `output_dir` (<task>/<optimizer>/<run_id>/ holding a config)."""
    for config in sorted(Path(output_dir).glob(f"*/*/*/{CONFIG_FILE}")):
        yield config.parent


def load_runs(output_dir: str | Path) -> list[dict[str, Any]]:
    """One flat record per run: identity, state, every config key (dotted) and every score
    (`best/test_acc`, `last/val_loss`, `train/time_s`)."""
    records = []
    for run_dir in iter_run_dirs(output_dir):
        config = read_config(run_dir) or {}
        status = read_status(run_dir) or {"state": "unknown"}
        record: dict[str, Any] = {
            "task": run_dir.parent.parent.name,
            "optimizer": run_dir.parent.name,
            "run_id": run_dir.name,
            "state": status.get("state"),
            "error": status.get("error"),
            "run_dir": str(run_dir),
        }
        record.update(flatten({k: v for k, v in config.items() if k != "run"}))
        for checkpoint, values in (read_scores(run_dir) or {}).items():
            if isinstance(values, dict):
                record.update({f"{checkpoint}/{metric}": value for metric, value in values.items()})
        records.append(record)
    return records


def load_results(output_dir: str | Path):  # -> pandas.DataFrame
    """The runs under `output_dir` as a DataFrame, one row per run (see `load_runs`)."""
    import pandas as pd

    return pd.DataFrame(load_runs(output_dir))
