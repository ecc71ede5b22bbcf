# cd /work/main && /work/venv/bin/python -m pytest tests/test_report.py -q   (needs Debian's chromium: .ci/install-chromium)
"""`framework report`: one self-contained HTML page, opened in headless Chromium.

The page is loaded with a probe script injected into a copy of it, which writes what the browser saw
into the DOM (load errors, each image's natural size, the rows of each table); `--dump-dom` hands that
back. A screenshot of the page itself must show the figures: colourful pixels that text does not make.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from framework.results.run_folder import load_runs, read_environment, read_metrics

from . import synthetic_runs as synthetic
from . import synthetic_search
from .conftest import REPO, require_service, run_cli

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.usefixtures("chromium")


@pytest.fixture
def chromium() -> str:
    require_service("Chromium", CHROMIUM is not None, "Debian: apt-get install chromium; CI runs .ci/install-chromium")
    return CHROMIUM

PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || "load error").slice(0, 200)), true);
window.addEventListener("load", () => {
  const images = [...document.images].map((i) => [i.naturalWidth, i.naturalHeight]);
  const tables = {};
  document.querySelectorAll("table").forEach((t) => (tables[t.className] = tables[t.className] || []).push(t.tBodies[0].rows.length));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__errors, images: images, tables: tables, title: document.title});
  document.body.appendChild(out);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with its own profile and no name resolution: nothing can be fetched from outside."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}",
               "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _probe(page: Path, tmp_path: Path) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    proc = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the probe wrote nothing; chromium said:\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def _colourful_share(page: Path, tmp_path: Path) -> float:
    """Share of a screenshot's pixels that are clearly coloured (text, tables and links are not)."""
    from matplotlib.image import imread

    shot = tmp_path / "screenshot.png"
    _chromium(tmp_path, "--window-size=1280,6000", f"--screenshot={shot}", page.as_uri())
    pixels = imread(shot)[..., :3]
    return float(((pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.25).mean())


def _report(output: Path, tmp_path: Path, *args: str) -> tuple[Path, str]:
    proc = run_cli("report", str(output), *args, cwd=tmp_path, check=True)
    page = Path(proc.stdout.strip().splitlines()[-1])
    if not page.is_absolute():
        page = tmp_path / page
    return page, page.read_text(encoding="utf-8")


def test_page_is_self_contained_with_status_grid_and_failures(tmp_path):
    output = synthetic.write_output(tmp_path / "out")
    page, text = _report(output, tmp_path)
    assert page == output / "report.html"
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources), sources
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert len(re.findall(r"<img ", text)) == 2 + 2 + 1 + 1  # heatmaps, curves, time to target, profile
    # each failure's error, escaped, with its traceback folded away
    assert "RuntimeError: boom &lt;on purpose&gt;" in text and "<summary>traceback</summary>" in text
    assert "training loss is nan at step 7 (epoch 0)" in text
    assert "14 done, 1 failed, 1 diverged." in text
    # the grid: the axes of each task
    assert "<td>optimizer.learning_rate</td><td>0.01, 0.1</td>" in text
    assert "<td>engine.seed</td><td>1, 2, 3</td>" in text


def test_heatmap_problem_is_a_note_not_an_error(tmp_path):
    output = synthetic.write_output(tmp_path / "out")
    _, text = _report(output, tmp_path, "--x", "optimizer.momentum")  # only sgd has momentum
    assert 'class="note"' in text and "heatmaps:" in text
    assert "toy_curves" in text  # everything else is still there


@needs_chromium
def test_chromium_loads_the_page_images_decode_and_tables_have_their_rows(tmp_path):
    output = synthetic.write_output(tmp_path / "out")
    page, _ = _report(output, tmp_path)
    seen = _probe(page, tmp_path)
    assert seen["errors"] == []
    assert seen["title"] == "framework report: out"
    assert len(seen["images"]) == 6 and all(w > 100 and h > 100 for w, h in seen["images"]), seen["images"]
    tables = seen["tables"]
    assert tables["status-table"] == [2 + 2 + 1]  # a row per task x optimizer, and the total
    assert tables["failures-table"] == [2]
    assert tables["best-table"] == [4]
    assert tables["grid-table"] == [2, 3]  # lossy: optimizers, seed; toy: optimizers, seed, learning rate
    assert tables["target-table"] == [4]  # toy: a row per configuration
    assert tables["profile-table"] == [6]  # score: 2 tasks x 2 optimizers; steps to target: toy x 2
    assert tables["environment-table"] == [1]
    assert _colourful_share(page, tmp_path) > 0.03


@pytest.mark.slow
@needs_chromium
def test_report_of_a_real_digits_grid(tmp_path):
    """A small real grid through the CLI: env.json and the training loss are recorded, the page shows it."""
    out = tmp_path / "results"
    run_cli("run", "tasks=digits", "optimizers=adamw_baseline,sgd_baseline", "optimizer.learning_rate=1e-2,1e-1",
            "engine.seed=1,2", "task.max_epochs=3", "evaluation.target=0.85", "-o", str(out), cwd=tmp_path, check=True)
    runs = load_runs(out)
    assert len(runs) == 8 and {r["state"] for r in runs} == {"done"}
    in_git = (REPO / ".git").exists() and shutil.which("git")
    commits = {read_environment(Path(run["run_dir"]))["code"]["git_commit"] for run in runs}
    if in_git:  # the checkout's commit when the grid started (HEAD may have moved on since)
        (commit,) = commits
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert subprocess.run(["git", "-C", str(REPO), "merge-base", "--is-ancestor", commit, "HEAD"]).returncode == 0
    for run in runs:
        env = read_environment(Path(run["run_dir"]))
        assert env["device"].startswith("cpu") and env["packages"]["torch"]
        steps = [row["step"] for row in read_metrics(Path(run["run_dir"])) if "train_loss" in row]
        # 3 epochs of 20 steps: the default interval (50) is capped at one epoch, so each epoch has a point
        assert steps == [19.0, 39.0, 59.0]

    page, text = _report(out, tmp_path)
    seen = _probe(page, tmp_path)
    assert seen["errors"] == [] and len(seen["images"]) == 4 and all(w > 0 for w, _ in seen["images"])
    assert seen["tables"]["best-table"] == [2] and seen["tables"]["status-table"] == [3]
    # the best table's numbers from the run directories by hand
    import pandas as pd

    best = pd.read_csv(out / "plots" / "best_configurations.csv")
    for row in best.itertuples():
        means = {}  # learning rate -> (validation mean, test mean) over the seeds
        for lr in (1e-2, 1e-1):
            own = [r for r in runs if r["optimizer"] == row.optimizer and r["optimizer.learning_rate"] == lr]
            means[lr] = (statistics.mean(r["best/val_acc"] for r in own), statistics.mean(r["best/test_acc"] for r in own))
        chosen = max(means, key=lambda lr: means[lr][0])  # on validation (a tie goes to the first, 1e-2)
        assert row.mean == pytest.approx(means[chosen][1]) and row.select_mean == pytest.approx(means[chosen][0])
    table = pd.read_parquet(out / "plots" / "results.parquet")
    # a row per run x checkpoint x metric that is a number (train/precision, "32-true", is text)
    assert len(table) == sum(1 for r in runs for key, value in r.items() if "/" in key and not isinstance(value, str))
    assert set(table["env.code.git_commit"].dropna()) == (commits if in_git else set())


def _search_output(tmp_path: Path) -> Path:
    return synthetic_search.write_grid(synthetic_search.write_search(tmp_path / "out"))


def test_a_search_is_shown_where_heatmaps_go(tmp_path):
    _, text = _report(_search_output(tmp_path), tmp_path)
    section = text.split('<section id="heatmaps">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Heatmaps and searches</h2>" in section
    captions = re.findall(r"<figcaption>(\w+):", section)
    assert captions == ["grid_heatmap", "toy_best_so_far", "toy_scatter"]  # the grid's heatmap, the search's trials
    assert "<td>search</td><td>toy-random (random, 24 trials)</td>" in text  # 12 trials x 2 optimizers
    assert "<th>pruned</th>" in text  # a state of its own in the status table, not a failure
    assert "59 done, 1 failed, 2 diverged, 2 pruned." in text  # runs: 2 seeds of each trial


@needs_chromium
def test_chromium_shows_the_search_figures(tmp_path):
    page, _ = _report(_search_output(tmp_path), tmp_path)
    seen = _probe(page, tmp_path)
    assert seen["errors"] == []
    # grid heatmap, best so far, scatter, performance profile (the synthetic runs log no learning curves)
    assert len(seen["images"]) == 4 and all(w > 300 and h > 200 for w, h in seen["images"]), seen["images"]
    assert seen["tables"]["best-table"] == [4]
    assert seen["tables"]["grid-table"] == [4, 5]  # grid: optimizers, seed, lr, wd; toy: and its search
    assert _colourful_share(page, tmp_path) > 0.02


@needs_chromium
def test_the_probe_sees_broken_and_external_images(tmp_path):
    """The checks above are not vacuous: a broken image and one from the network are reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                    '<img src="data:image/png;base64,iVBORw0KGgoAAAAN"><img src="https://example.org/x.png">'
                    '<table class="t"><tbody><tr><td>1</td></tr></tbody></table></body></html>')
    seen = _probe(page, tmp_path)
    assert seen["images"] == [[0, 0], [0, 0]] and len(seen["errors"]) == 2
    assert seen["tables"] == {"t": [1]}
