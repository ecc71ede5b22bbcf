# python -m pytest -q tests/test_first_grid.py   (a real 2-epoch digits grid through the CLI; ~30 s on 2 CPUs)
"""A first grid of optimizers whose defaults differ draws every cell that has data.

adamw_baseline's default weight decay is 0.01 and lion's 0.1: a grid that sweeps only the learning rate
has runs at two weight decays, one per optimizer. Each panel's axes are its own optimizer's values, so
no panel shows a row of blank cells for the other optimizer's weight decay.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow

LRS = (1e-3, 1e-2)


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first_grid")
    run_cli("run", "tasks=digits", "optimizers=adamw_baseline,lion", "optimizer.learning_rate=1e-3,1e-2",
            "task.max_epochs=2", "-o", "results", cwd=root, check=True)
    run_cli("plot", "results", "--format", "png", cwd=root, check=True)
    return root / "results"


def _drawn(ax) -> dict[tuple[str, str], float | None]:
    """What a panel shows: (x tick label, y tick label) -> the cell's colour value, None when blank."""
    values = ax.images[0].get_array()
    xs = [t.get_text() for t in ax.get_xticklabels()]
    ys = [t.get_text() for t in ax.get_yticklabels()]
    return {(x, y): (None if values.mask[row, col] else float(values[row, col]))
            for row, y in enumerate(ys) for col, x in enumerate(xs)}


def _figure(results: Path):
    """The heatmap Figure of digits, built by the code `framework plot` saves it with."""
    from framework.results.heatmaps import _figure, _plan
    from framework.results.run_folder import load_runs

    runs = [r for r in load_runs(results) if r["task"] == "digits"]
    _, settings, ((_, cells),), _ = _plan("digits", runs, None, None, (), ())
    return _figure(cells, settings, "digits")


def test_every_cell_with_data_is_drawn_and_the_box_sits_on_one(grid):
    import pandas as pd

    from framework.results.selection import label

    table = pd.read_csv(grid / "plots" / "digits_heatmap.csv")
    assert len(table) == 4 and table["mean"].notna().all()  # 2 optimizers x 2 learning rates, all finished
    assert dict(table.groupby("optimizer")["y"].unique().apply(list)) == {"adamw_baseline": [0.01], "lion": [0.1]}
    figure = _figure(grid)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    assert sorted(panels) == ["adamw_baseline", "lion"]
    for optimizer, ax in panels.items():
        drawn = _drawn(ax)
        own = table[table.optimizer == optimizer]
        # the panel's cells are exactly its optimizer's, and none is blank
        assert sorted(drawn) == sorted((label(r.x), label(r.y)) for r in own.itertuples())
        for row in own.itertuples():
            assert math.isclose(drawn[(label(row.x), label(row.y))], row.mean)
        boxes = [p.get_xy() for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
        chosen = own[own.box]
        assert len(boxes) == 1 and len(chosen) == 1  # chosen on validation
        col, row = (round(v + 0.5) for v in boxes[0])
        xs = [t.get_text() for t in ax.get_xticklabels()]
        ys = [t.get_text() for t in ax.get_yticklabels()]
        cell = (xs[col], ys[row])
        assert drawn[cell] is not None and cell == (label(chosen.x.iloc[0]), label(chosen.y.iloc[0]))
    assert (grid / "plots" / "digits_heatmap.png").stat().st_size > 0
