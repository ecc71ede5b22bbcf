# python -m pytest tests/test_tune_batch.py   (slow: short real fits per batch size)
"""`framework tune-batch`: a row per doubling micro-batch measured through the task's real training step,
positive throughput, a best size among them, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("micro-batch  task.batch_size"))
    rows = []
    for line in lines[start + 2:]:
        if not line[:1].isdigit():
            break
        rows.append(line.split())
    return rows


def chosen(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("best throughput: micro-batch "))
    return int(line.split()[3])


def test_digits_table_doubles_up_to_the_cap_and_picks_one_of_its_sizes(tmp_path):
    # the global batch of one optimizer step is micro-batch x devices x accumulation: 2 here
    proc = run_cli("tune-batch", "digits", "engine.accumulate_grad_batches=2", "--start", "8", "--max-batch", "64",
                   "--steps", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    assert [int(r[0]) for r in rows] == [8, 16, 32, 64]
    assert [int(r[1]) for r in rows] == [16, 32, 64, 128]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 and r[4] == "-" for r in rows)  # no GPU: no memory column
    assert chosen(proc.stdout) in (8, 16, 32, 64)
    assert "largest that fits: micro-batch 64 (the cap" in proc.stdout
    assert f"set task.batch_size={2 * chosen(proc.stdout)} " in proc.stdout
    assert not (tmp_path / "results").exists()


def test_a_vision_task_is_capped_by_its_options(tmp_path):
    proc = run_cli("tune-batch", "semantic_segmentation", "task.crop_size=32", "--start", "2", "--max-batch", "4",
                   "--steps", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [int(r[0]) for r in table_rows(proc.stdout)] == [2, 4]
    assert chosen(proc.stdout) in (2, 4)


@pytest.mark.parametrize("args, message", [
    (("no_such_task",), "no_such_task"),
    (("digits", "task.batch_size"), "task.batch_size"),
    (("digits", "optimizer.learning_rate=1e-3,1e-2"), "no sweeps"),
    (("digits", "--max-batch", "4", "--start", "8"), "--max-batch 4 is below --start 8"),
    (("classification", "task.cache=ram"), "task.cache: 'ram' is not one of none, memory, disk"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = run_cli("tune-batch", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
