"""Reading a task's data files with errors that name the file (and the line): for a task's `setup()`
and its datasets' `__getitem__`.

    annotations = read_json(root / "annotations.json")     # DataError: ...annotations.json: truncated or invalid JSON at line 3 ...
    rows = read_csv(root / "labels.csv", columns=("file", "label"))
    image = load_image(root / "images" / row["file"])       # DataError: .../img_7.png: cannot decode the image ...

Each raises `framework.errors.DataError`, which a run records as a failure naming the file (and which
`engine.skip_bad_samples` may skip when it happens while loading a training sample).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from framework.errors import DataError


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the task's data path (was `framework prepare` run?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a truncated or malformed file names the line and column."""
    path = Path(path)
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the file; other errors at the very end mean the same
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = "; the file ends early (truncated download or interrupted write?)" if truncated else ""
        raise DataError(f"{path}: truncated or invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None


def read_csv(path: str | Path, columns: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """A CSV file's rows as dicts; the header must hold `columns` and every row must be complete
    (a truncated last line is an error naming its line)."""
    path = Path(path)
    rows = list(csv.reader(_read_text(path).splitlines()))
    if not rows:
        raise DataError(f"{path}: empty CSV file (expected a header with {', '.join(columns) or 'column names'})")
    header = rows[0]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: header lacks column(s) {', '.join(missing)} (has {', '.join(header)})")
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # blank line
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}: "
                            f"truncated or malformed row {','.join(row)!r}")
        records.append(dict(zip(header, row)))
    return records


def load_image(path: str | Path, mode: str = "RGB"):
    """An image file as a PIL image in `mode`, fully decoded now (PIL decodes lazily, which would report
    a truncated file later and elsewhere)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode the image ({type(exc).__name__}: {exc}); the file is corrupt or truncated") from None
