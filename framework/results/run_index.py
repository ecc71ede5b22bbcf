"""An index of an output folder's run records, so that reading 10,000 runs again costs file stats.

    <output>/.runs-index.json   {"version": ..., "runs": {"<task>/<optimizer>/<run_id>": [signature, record]}}

Parsing the configuration is most of the cost of reading a run (`run_folder.read_run`). A run's record is
taken from the index only when its config.json, config.yaml, status.json and scores.json have the same
modification time, size and inode as when it was indexed: every file of a run is written by a
temporary file and a rename, so a rewrite always changes the inode. The index also depends on the
source of the modules that build records (`run_folder.py`, `config/schema.py`): a change there rebuilds it.
It is plain JSON (never pickle: an output folder may come from someone else), written atomically, and
only an optimisation: when it cannot be read or written the runs are read as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from framework.config import schema
from framework.config.file_io import atomic_write_text
from framework.results import run_folder

INDEX_FILE = ".runs-index.json"
_SIGNED = (run_folder.CONFIG_JSON, run_folder.CONFIG_FILE, run_folder.STATUS_FILE, run_folder.SCORES_FILE)  # what read_run reads


def load_runs_indexed(output_dir: str | Path, workers: int | None = None) -> list[dict[str, Any]]:
    """The same records as `run_folder.load_runs(output_dir)`, runs unchanged since the last call taken
    from the index; the others are read by `run_folder.read_runs` (worker processes above 1,000 runs)."""
    output_dir = Path(output_dir)
    run_dirs = list(run_folder.iter_run_dirs(output_dir))
    version = _version()
    indexed = _read_index(output_dir, version)
    signatures = {}
    records: dict[str, dict[str, Any]] = {}
    stale: list[Path] = []
    for run_dir in run_dirs:
        key = run_dir.relative_to(output_dir).as_posix()
        signatures[key] = signature = _signature(run_dir)
        entry = indexed.get(key)
        if entry is not None and entry[0] == signature:
            records[key] = {**entry[1], "run_dir": str(run_dir)}  # the folder may have moved
        else:
            stale.append(run_dir)
    for run_dir, record in zip(stale, run_folder.read_runs(stale, workers)):
        records[run_dir.relative_to(output_dir).as_posix()] = record
    ordered = [records[run_dir.relative_to(output_dir).as_posix()] for run_dir in run_dirs]
    if stale or len(indexed) != len(run_dirs):
        _write_index(output_dir, version, {key: [signatures[key], records[key]] for key in signatures})
    return ordered


def _signature(run_dir: Path) -> list[list[int] | None]:
    signature = []
    for name in _SIGNED:
        try:
            stat = os.stat(run_dir / name)
        except OSError:
            signature.append(None)
            continue
        signature.append([stat.st_mtime_ns, stat.st_size, stat.st_ino])
    return signature


def _version() -> str:
    """Changes whenever the code that builds a record changes, so an old index is never trusted."""
    digest = hashlib.sha256()
    for module in (run_folder, schema):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _read_index(output_dir: Path, version: str) -> dict[str, list]:
    try:
        data = json.loads((output_dir / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != version or not isinstance(data.get("runs"), dict):
        return {}
    return data["runs"]


def _write_index(output_dir: Path, version: str, runs: dict[str, list]) -> None:
    try:
        atomic_write_text(output_dir / INDEX_FILE, json.dumps({"version": version, "runs": runs}, default=str))
    except OSError:
        pass  # a read-only results folder: reading it again just costs the parsing
