"""`framework cancel OUTPUT`: scancel the SLURM jobs of every run still queued or running."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    parser = commands.add_parser("cancel", help="cancel the SLURM jobs of an output folder that are queued or running")
    parser.add_argument("output", metavar="OUTPUT", help="the output folder of `framework run`")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.commands.common import existing_output
    from framework.commands.status import cell_states
    from framework.executors import slurm
    from framework.results import run_folder

    existing_output(args.output)
    live = [r for r in cell_states(args.output) if r["state"] in slurm.IN_FLIGHT and r["job_id"]]
    plot_jobs = slurm.submitted_plot_jobs(args.output)
    plot_states = slurm.scheduler_states(plot_jobs)
    live_plots = [j for j in plot_jobs if plot_states.get(j) in slurm.ALIVE]
    cancelled = slurm.cancel([r["job_id"] for r in live] + live_plots)
    for record in live:  # recorded now: a job cancelled while pending never writes its own status
        run_folder.write_status(Path(record["run_dir"]), "failed",
                                error=f"cancelled (framework cancel, job {record['job_id']}); the next `framework run` resubmits it")
    print(f"cancelled {len(cancelled)} job{'s' * (len(cancelled) != 1)}" + (f": {' '.join(cancelled)}" if cancelled else ""))
    return 0
