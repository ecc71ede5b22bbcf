"""`framework status OUTPUT`: every cell's state from its run directory and, for SLURM jobs, sacct."""

from __future__ import annotations

import argparse
import time

from framework.commands.common import existing_output, fmt, table


def register(commands) -> None:
    parser = commands.add_parser(
        "status", help="the state of every run under an output folder (asks SLURM about submitted ones)",
        description="States: pending (queued on SLURM), running, requeued (timeout or preemption, will resume), "
                    "done, failed (error or killed: the next `framework run` retries it), diverged (NaN loss).",
    )
    parser.add_argument("output", metavar="OUTPUT", help="the output folder of `framework run`")
    parser.add_argument("--errors", action="store_true", help="print each failed run's error and traceback file")
    parser.set_defaults(handler=handler)


def cell_states(output: str) -> list[dict]:
    """One record per run directory: task, optimizer, run_id, sweep, state, job_id, note, run_dir."""
    from framework.executors import slurm
    from framework.results import run_folder

    cells = []
    for run_dir in run_folder.iter_run_dirs(output):
        status = run_folder.read_status_and_job(run_dir)
        status.setdefault("state", "unknown")
        cells.append({"run_dir": run_dir, "status": status})
    jobs = [c["status"].get("job_id") for c in cells if c["status"]["state"] in slurm.IN_FLIGHT]
    scheduler = slurm.scheduler_states(j for j in jobs if j) if any(jobs) else {}
    records = []
    for cell in cells:
        status, run_dir = cell["status"], cell["run_dir"]
        state, note = slurm.reconcile(status, scheduler)
        if state == "running" and not status.get("job_id"):
            state, note = _local_running(run_dir)
        records.append({
            "task": run_dir.parent.parent.name, "optimizer": run_dir.parent.name, "run_id": run_dir.name,
            "sweep": status.get("sweep") or {}, "state": state, "job_id": status.get("job_id") or "",
            "requeues": status.get("requeues", 0), "note": note or "", "run_dir": str(run_dir),
        })
    return records


def _local_running(run_dir) -> tuple[str, str]:
    """A cell a local process records as running: still running while its lock's holder lives."""
    from framework.training.run_lock import STALE_AFTER_S, read_holder

    holder = read_holder(run_dir)
    reason = "no process holds its lock" if holder is None else holder.stale_reason(STALE_AFTER_S)
    if reason is None:
        return "running", f"by {holder.describe()}"
    return "failed", f"interrupted ({reason}); the next `framework run` resumes it from its last checkpoint"


def handler(args: argparse.Namespace) -> int:
    records = cell_states(existing_output(args.output))
    if not records:
        print(f"no runs under {args.output}")
        return 0
    axes = sorted({k for r in records for k in r["sweep"]})
    rows = [[r["task"], r["optimizer"], r["run_id"], *(fmt(r["sweep"].get(k, "")) for k in axes), r["state"],
             r["job_id"], str(r["requeues"] or ""), r["note"][:70]] for r in records]
    print(table(["task", "optimizer", "run_id", *axes, "state", "job", "requeues", "error / note"], rows))
    order = ("pending", "running", "requeued", "done", "failed", "diverged", "pruned")
    counts = {s: sum(r["state"] == s for r in records) for s in order}
    others = len(records) - sum(counts.values())
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + (f", {others} other" if others else "")
          + f" ({time.strftime('%H:%M:%S')})")
    if args.errors:
        for r in records:
            if r["state"] == "failed":
                print(f"\n{r['task']}/{r['optimizer']}/{r['run_id']}: {r['note']}\n  traceback: {r['run_dir']}/status.json")
    return 0
