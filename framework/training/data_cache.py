"""The cache of generated data (the bundled synthetic datasets): one folder per dataset version and
settings, written once and shared by every run, checkout and process on the machine."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    """$FRAMEWORK_DATA_DIR, else ~/.cache/framework: generated data outlives runs and checkouts."""
    return Path(os.environ.get("FRAMEWORK_DATA_DIR") or Path.home() / ".cache" / "framework").expanduser()


def generate_once(name: str, write: Callable[[Path], Any], cache_dir: str | Path | None = None) -> Path:
    """`cache_dir/name`, written by `write(folder)` unless it is there. Each process writes into its own
    temporary folder and renames it into place: a folder of that name is always complete, and when
    two processes race, the first rename wins and the other's copy is thrown away."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = cache / name
    if root.is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    temporary = cache / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(temporary)
        try:
            os.rename(temporary, root)
        except OSError:
            if not root.is_dir():  # not another process's finished folder: a real failure
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return root
