# cd /work/main && /work/venv/bin/python -m pytest tests/test_results_table.py -q
"""The results table, the best-configuration table, learning curves, time to target and performance
profiles, each checked against numbers computed by hand from a hand-written output folder."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from framework.results import performance_profiles
from framework.results.analysis import analyze
from framework.results.results_table import load_table, write_table
from framework.results.run_folder import (
    load_runs,
    load_runs_parallel,
    read_environment,
    read_metrics,
    read_run,
    read_scores,
)
from framework.results.selection import t_interval
from framework.training.environment import capture, write_environment

from . import synthetic_runs as synthetic
from .conftest import REPO, run_cli


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    return synthetic.write_output(tmp_path_factory.mktemp("synthetic") / "out")


@pytest.fixture(scope="module")
def analysis(output, tmp_path_factory):
    return analyze(output, plot_dir=tmp_path_factory.mktemp("plots"), formats=("png",))


def _csv(path: Path):
    import pandas as pd

    return pd.read_csv(path)


# ---------------------------------------------------------------- the long-format table


def test_table_has_one_row_per_run_checkpoint_and_metric(output):
    table = load_table(output)
    for cell in synthetic.runs():
        directory = synthetic.run_dir(output, cell)
        rows = table[table.run_id == directory.name]
        assert set(rows.task) == {cell[0]} and set(rows.optimizer) == {cell[1]} and set(rows.seed) == {cell[3]}
        assert set(rows.state) == {synthetic.state(cell)}
        assert set(rows["optimizer.learning_rate"]) == {cell[2]}
        assert set(rows["env.packages.torch"]) == {"2.13.0+cpu"} and set(rows["env.code.git_commit"]) == {"abc123"}
        assert set(rows["env.device"]) == {synthetic.ENV["device"]}
        if synthetic.state(cell) != "done":  # one row, no score, the error kept
            assert len(rows) == 1 and rows.iloc[0].isna()[["checkpoint", "metric", "value"]].all()
            assert rows.iloc[0].error.startswith("RuntimeError" if cell == synthetic.FAILED else "training loss")
            continue
        scores = read_scores(directory)
        expected = {(c, m): v for c, values in scores.items() for m, v in values.items() if not isinstance(v, str)}
        assert scores["train"]["precision"] == "32-true" and "precision" not in set(rows.metric)
        assert len(rows) == len(expected) == 11  # best 4, last 2, train 5
        assert {(r.checkpoint, r.metric): r.value for r in rows.itertuples()} == pytest.approx(expected)
    assert len(table) == 14 * 11 + 2  # 12 toy + 4 lossy runs; the failed and the diverged have 1 row
    columns = list(table.columns)
    assert columns[:9] == ["task", "optimizer", "run_id", "seed", "state", "error", "checkpoint", "metric", "value"]
    # identity and plot settings are not hyperparameters; evaluation.* and engine.output_dir do not change results
    assert "engine.output_dir" not in columns and "evaluation.target" not in columns and "run_dir" not in columns
    assert "engine.seed" not in columns and "task.name" not in columns


def test_csv_and_parquet_hold_the_same_table(output, tmp_path):
    import pandas as pd

    table = load_table(output)
    csv_path, parquet_path = write_table(table, tmp_path)
    assert (csv_path.name, parquet_path.name) == ("results.csv", "results.parquet")
    from_csv, from_parquet = pd.read_csv(csv_path), pd.read_parquet(parquet_path)
    assert from_csv.shape == from_parquet.shape == table.shape
    assert list(from_parquet.columns) == list(table.columns)
    assert from_parquet["value"].tolist() == pytest.approx(table["value"].tolist(), nan_ok=True)
    assert from_csv["value"].tolist() == pytest.approx(table["value"].tolist(), nan_ok=True)
    # a list value becomes JSON text, a key only sgd has is empty for adam
    assert set(from_parquet["optimizer.milestones"]) == {"[0.5, 0.9]"}
    assert from_parquet.loc[from_parquet.optimizer == "adam", "optimizer.momentum"].isna().all()


def test_read_run_and_the_parallel_loader_agree_with_load_runs(output):
    records = load_runs(output)
    assert [read_run(Path(r["run_dir"])) for r in records] == records
    assert load_runs_parallel(output, workers=2) == records  # two processes, each half of the runs
    assert load_runs_parallel(output) == records  # few runs: read in this process


def test_index_serves_unchanged_runs_and_rereads_changed_ones(tmp_path):
    from framework.results.run_folder import write_scores
    from framework.results.run_index import INDEX_FILE, load_runs_indexed

    output = synthetic.write_output(tmp_path / "out")
    records = load_runs(output)
    assert load_runs_indexed(output) == records and (output / INDEX_FILE).is_file()
    # An unchanged run comes from the index: plant a marker in its indexed record and get it back.
    index = json.loads((output / INDEX_FILE).read_text())
    key = "toy/adam/toy-adam-lr0.01-s1"
    index["runs"][key][1]["marker"] = "from the index"
    (output / INDEX_FILE).write_text(json.dumps(index))
    assert next(r for r in load_runs_indexed(output) if r["run_id"] == "toy-adam-lr0.01-s1")["marker"] == "from the index"
    # A rewritten file (atomic: new inode) makes the run be read again; a removed run disappears.
    run_dir = output / key
    write_scores(run_dir, {"best": {"test_acc": 0.5}})
    import shutil

    shutil.rmtree(output / "lossy" / "sgd")
    again = load_runs_indexed(output)
    assert again == load_runs(output) and len(again) == len(records) - 2
    assert next(r for r in again if r["run_dir"] == str(run_dir))["best/test_acc"] == 0.5
    # A damaged index, or one written by other code, is ignored.
    (output / INDEX_FILE).write_text("{not json")
    assert load_runs_indexed(output) == again
    index = json.loads((output / INDEX_FILE).read_text())
    index["version"], index["runs"][key][1]["marker"] = "other code", "stale"
    (output / INDEX_FILE).write_text(json.dumps(index))
    assert load_runs_indexed(output) == again
    # The folder moved: run_dir follows it.
    moved = tmp_path / "moved"
    output.rename(moved)
    assert load_runs_indexed(moved) == load_runs(moved)


def test_empty_folder_gives_an_empty_table_and_runs_without_scores_one_row_each(tmp_path):
    assert list(load_table(tmp_path).columns)[:3] == ["task", "optimizer", "run_id"]
    output = synthetic.write_output(tmp_path / "out")
    failed = [r for r in load_runs(output) if r["state"] != "done"]
    table = load_table(output, runs=failed)
    assert sorted(table.state) == ["diverged", "failed"] and table["value"].isna().all()


# ---------------------------------------------------------------- recorded at run time


def test_environment_is_captured_and_written(tmp_path):
    env = capture({"accelerator": "cpu", "devices": 1})
    assert env["packages"]["torch"] == metadata.version("torch")
    assert env["packages"]["lightning"] == metadata.version("lightning")
    assert env["device"].startswith("cpu: ")
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0:
        assert env["code"]["git_commit"] == git.stdout.strip() and isinstance(env["code"]["git_dirty"], bool)
    write_environment(tmp_path, {"accelerator": "cpu"})
    assert read_environment(tmp_path)["packages"] == env["packages"]
    json.dumps(env)  # JSON-serialisable as it is


def test_read_metrics_keeps_the_training_rows_only(output):
    rows = read_metrics(synthetic.run_dir(output, ("toy", "adam", 0.01, 1)))
    assert [r["step"] for r in rows] == [4, 9, 14, 19, 24, 29]
    assert not any("test_acc" in r for r in rows)
    assert rows[1] == {"epoch": 0, "step": 9, "val_acc": synthetic.val_acc("adam", 0.01, 1, 9), "val_loss": 0.5}


# ---------------------------------------------------------------- figures and their numbers


def test_best_configuration_table_by_hand(analysis):
    table = _csv(analysis.plot_dir / "best_configurations.csv")
    assert len(table) == 4
    for task, optimizer, lr, rank in (("toy", "adam", 0.01, 1), ("toy", "sgd", 0.01, 2),
                                      ("lossy", "adam", 0.01, 1), ("lossy", "sgd", 0.01, 2)):
        row = table[(table.task == task) & (table.optimizer == optimizer)].iloc[0]
        seeds = synthetic.SEEDS if task == "toy" else synthetic.SEEDS[:2]
        scores = [synthetic.score(task, optimizer, lr, s) for s in seeds]
        assert row["mean"] == pytest.approx(statistics.mean(scores))
        assert row["std"] == pytest.approx(statistics.stdev(scores))
        assert (row["rank"], row["n_done"], row["n_runs"]) == (rank, len(seeds), len(seeds))
        assert row["metric"] == ("best/test_acc" if task == "toy" else "best/test_loss")
        # the documented interval: mean ± t(0.975, n - 1) x std / sqrt(n); t(0.975, 2) = 4.303, t(0.975, 1) = 12.706
        half = (4.302653 if len(seeds) == 3 else 12.706205) * statistics.stdev(scores) / math.sqrt(len(seeds))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((row["mean"] - half, row["mean"] + half))
        assert row["selected_by"] == ("best/val_acc" if task == "toy" else "best/val_loss") and row["complete"]
    toy = table[table.task == "toy"]
    assert set(toy.configuration) == {"optimizer.learning_rate=0.01"}  # the only hyperparameter that varies


def test_equal_means_share_a_rank():
    from framework.results.best_table import best_rows
    from framework.results.selection import Configuration, Scoring

    score = Scoring("t", "best/acc", "max", ".3f", None, "val_acc", "max")
    best = {name: Configuration("t", name, {}, scores=scores, seeds=[1, 2])
            for name, scores in (("a", [0.5, 0.7]), ("b", [0.7, 0.5]), ("c", [0.1, 0.2]), ("d", []))}
    assert {row["optimizer"]: row["rank"] for row in best_rows(score, best, [])} == {"a": 1, "b": 1, "c": 3, "d": None}


def test_t_interval_edges():
    assert t_interval([0.5]) is None
    assert t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    low, high = t_interval([1.0, 2.0, 3.0, 4.0])  # std 1.291, t(0.975, 3) = 3.182
    assert (low, high) == pytest.approx((2.5 - 3.182446 * 1.290994 / 2, 2.5 + 3.182446 * 1.290994 / 2), abs=1e-5)


def test_learning_curves_by_hand(analysis):
    assert {p.name for p in analysis.tasks["toy"].curves} == {"toy_curves.png", "toy_curves.csv"}
    curves = _csv(analysis.plot_dir / "toy_curves.csv")
    for optimizer in ("adam", "sgd"):  # the best configuration of both is lr 0.01, every seed done
        for metric, steps, function in (("val_acc", synthetic.VAL_STEPS, synthetic.val_acc),
                                        ("train_loss", synthetic.TRAIN_STEPS, synthetic.train_loss)):
            rows = curves[(curves.optimizer == optimizer) & (curves.metric == metric)]
            assert rows.step.tolist() == list(steps)  # the post-training rows at step 30 are left out
            for row in rows.itertuples():
                values = [function(optimizer, 0.01, s, row.step) for s in synthetic.SEEDS]
                assert (row.mean, row.min, row.max, row.n_seeds) == pytest.approx(
                    (statistics.mean(values), min(values), max(values), 3))


def test_time_to_target_by_hand(analysis):
    rows = _csv(analysis.plot_dir / "toy_time_to_target.csv")
    # val_acc >= 0.8 first at logged step 9 (adam, lr 0.01), 19 (adam 0.1, sgd 0.01), 29 (sgd 0.1): steps + 1;
    # sgd at lr 0.1 has one seed done, one diverged, one failed: it did not reach the target
    expected = {("adam", 0.01): (10, 3, True), ("adam", 0.1): (20, 3, False),
                ("sgd", 0.01): (20, 3, True), ("sgd", 0.1): (None, 1, False)}
    for (optimizer, lr), (steps, done, fastest) in expected.items():
        row = rows[(rows.optimizer == optimizer) & (rows.configuration == f"optimizer.learning_rate={lr:g}")].iloc[0]
        assert (row.n_done, row.n_reached, bool(row.fastest)) == (done, done, fastest)
        if steps is None:
            assert math.isnan(row.steps) and math.isnan(row.seconds)
            continue
        assert row.steps == steps and row.seconds == pytest.approx(steps * 100.0 / 1000)  # step_time_ms is 100
    assert {p.name for p in analysis.tasks["toy"].targets} == {"toy_time_to_target.png", "toy_time_to_target.csv"}
    assert analysis.tasks["lossy"].targets == []  # no evaluation.target


def test_performance_profile_by_hand(analysis):
    rows = _csv(analysis.plot_dir / "performance_profile.csv")
    ratio = {(r.measure, r.task, r.optimizer): r.ratio for r in rows.itertuples()}
    assert ratio[("score", "toy", "adam")] == 1.0 and ratio[("score", "lossy", "adam")] == 1.0
    assert ratio[("score", "toy", "sgd")] == pytest.approx(0.92 / 0.72)  # higher is better: best / value
    assert ratio[("score", "lossy", "sgd")] == pytest.approx(0.815 / 0.515)  # lower is better: value / best
    assert ratio[("steps to target", "toy", "sgd")] == pytest.approx(20 / 10)
    score_rows = [r for r in analysis.profile_rows if r["measure"] == performance_profiles.SCORE]
    assert performance_profiles.share_within(score_rows, "adam", 1.0) == 1.0
    assert performance_profiles.share_within(score_rows, "sgd", 1.3) == 0.5  # toy (1.28) yes, lossy (1.58) no
    assert performance_profiles.share_within(score_rows, "sgd", 1.6) == 1.0
    assert (analysis.plot_dir / "performance_profile.png").stat().st_size > 0


def test_profile_ratios_edge_cases():
    rows, note = performance_profiles.ratios("score", "t", {"a": 2.0, "b": None, "c": 4.0}, "min")
    assert [r["ratio"] for r in rows] == [1.0, math.inf, 2.0] and note is None
    rows, note = performance_profiles.ratios("score", "t", {"a": -1.0, "b": 1.0}, "max")
    assert rows == [] and "left out" in note
    rows, _ = performance_profiles.ratios("steps to target", "t", {"a": None, "b": None}, "min")
    assert all(r["ratio"] == math.inf for r in rows)  # nobody reached it: the task counts for nobody


# ---------------------------------------------------------------- through the command line


def test_plot_command_writes_every_file_and_prints_the_best_table(output, tmp_path):
    plots = tmp_path / "figs"
    proc = run_cli("plot", str(output), "--out", str(plots), "--format", "png", cwd=tmp_path, check=True)
    expected = {"toy_heatmap.png", "toy_heatmap.csv", "lossy_heatmap.png", "lossy_heatmap.csv", "toy_curves.png",
                "toy_curves.csv", "lossy_curves.png", "lossy_curves.csv", "toy_time_to_target.png",
                "toy_time_to_target.csv", "best_configurations.csv", "performance_profile.png",
                "performance_profile.csv", "results.csv", "results.parquet"}
    assert {p.name for p in plots.iterdir()} == expected
    assert "configuration chosen on validation per task x optimizer" in proc.stdout and "(protocol v1)" in proc.stdout
    assert "0.920 ± 0.010" in proc.stdout  # toy, adam: mean and std of 0.91, 0.92, 0.93


def test_evaluation_target_is_validated(tmp_path):
    proc = run_cli("run", "tasks=digits", "evaluation.target=true", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and "evaluation.target: must be a number" in proc.stderr
    assert run_cli("run", "tasks=digits", "evaluation.target=0.9", "--dry-run", cwd=tmp_path).returncode == 0


def test_modules_import_without_heavy_libraries():
    modules = "analysis, best_table, curves, performance_profiles, report, selection, results_table, time_to_target"
    code = (f"import sys; from framework.results import {modules}; from framework.training import environment; "
            "import framework.commands.report; "
            "print(sorted({'matplotlib', 'pandas', 'numpy', 'torch', 'pyarrow'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"
