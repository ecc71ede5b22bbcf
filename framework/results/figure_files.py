"""Saving matplotlib figures in the formats asked for; shared by every plot module."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from framework.errors import FrameworkError

DPI = 150


def file_stem(plot_dir: Path, name: str) -> Path:
    """`plot_dir/name` with characters that are unsafe in file names replaced by `_`."""
    return plot_dir / re.sub(r"[^\w.=+-]", "_", name)


def save(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Write `fig` as `<stem>.<format>` for each format; FrameworkError for an unknown format."""
    paths = []
    for fmt in formats:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise FrameworkError(f"unknown plot format '{fmt}' (known: png, pdf, svg, ...)")
        paths.append(stem.with_name(f"{stem.name}.{fmt}"))
        fig.savefig(paths[-1], dpi=DPI)
    return paths
