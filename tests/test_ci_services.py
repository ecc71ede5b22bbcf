# python -m pytest tests/test_ci_services.py -q
"""Tests that need a service (the SLURM cluster, Chromium) skip where it is missing, except in CI ($CI set
to true, as .ci/run exports): there a missing service fails them, so CI cannot pass without running them."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from .conftest import REPO

# Every test that needs the cluster or Chromium.
NEEDS_SERVICE = ["tests/test_slurm.py", "tests/test_report.py::test_chromium_loads_the_page_images_decode_and_tables_have_their_rows",
                 "tests/test_report.py::test_report_of_a_real_digits_grid", "tests/test_report.py::test_the_probe_sees_broken_and_external_images"]


def _outcomes(tmp_path, ci: str | None) -> tuple[int, dict[str, tuple[str, str]]]:
    """pytest's exit status and, per test, (failure / error / skipped / passed, message), of the tests above
    run where neither sinfo nor chromium is on PATH (an empty folder)."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PATH": str(empty)} | ({"CI": ci} if ci else {})
    report = tmp_path / f"report-{ci}.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *NEEDS_SERVICE],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        found = [child for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = (found[0].tag if found else "passed", found[0].get("message", "") if found else "")
    return proc.returncode, outcomes


def test_a_missing_service_skips_locally_and_fails_in_ci(tmp_path):
    (local_status, local), (ci_status, ci) = _outcomes(tmp_path, None), _outcomes(tmp_path, "true")
    assert set(local) == set(ci) and len(local) >= 11  # every test of test_slurm.py (8 today), 3 Chromium tests
    assert (local_status, {state for state, _ in local.values()}) == (0, {"skipped"})
    assert ci_status == 1 and {state for state, _ in ci.values()} == {"error"}  # failed in their fixture
    messages = {message for _, message in ci.values()}
    assert any("SLURM cluster is not available" in m for m in messages)
    assert any("Chromium is not available" in m for m in messages)


def test_ci_run_sets_ci():
    assert "\nexport CI=true " in (REPO / ".ci" / "run").read_text()
