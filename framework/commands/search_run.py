"""`framework run` with `search.strategy: tpe`: studies whose trials search workers ask while they train.

random, quasirandom and grid searches expand to runs like any grid (config/grid.py) and need nothing
here; a tpe study's trials are not known in advance, so this lists the studies (--dry-run), runs their
workers here (engine.workers processes) or submits them as SLURM job arrays (docs/search.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.errors import FrameworkError


def run_studies(args: argparse.Namespace, request, search, templates) -> int:
    """The tpe branch of `framework run`: `templates` are grid.expand's runs at the space's sample point."""
    from framework.config.batch_size import processes
    from framework.config.studies import plan_studies
    from framework.executors import study, study_summary

    plans = plan_studies(request, search, templates)
    if args.force:
        raise FrameworkError("--force: a tpe study's trials are asked anew, not rerun; give search.study a new "
                             "name (or another output folder) to start the search over")
    if args.dry_run:
        for plan in plans:
            print("\n".join(study_summary.study_lines(plan)))
        print(f"{len(plans)} stud{'ies' if len(plans) != 1 else 'y'} (dry run: nothing was run; the trials are "
              "asked by the workers while they run)")
        return 0
    output = Path(plans[0].output_dir).resolve()
    if plans[0].executor == "slurm":
        if any(processes(p.template.config["engine"]) > 1 for p in plans):
            raise FrameworkError("engine.devices/engine.nodes: a tpe search on SLURM trains each trial in one process; "
                                 "set engine.devices=1 engine.nodes=1, or use strategy random or quasirandom")
        arrays = study.submit(plans, request.plugin_paths())
        print(f"{len(plans)} stud{'ies' if len(plans) != 1 else 'y'} submitted as job array"
              f"{'s' * (len(arrays) != 1)} {', '.join(arrays)} ({max(1, plans[0].workers)} search workers each)")
        print(f"follow with: framework status {output}")
        return 0
    workers = plans[0].workers
    where = "in this process" if workers == 0 else f"{workers} search worker{'s' * (workers != 1)}"
    print(f"{len(plans)} tpe stud{'ies' if len(plans) != 1 else 'y'} of {search.trials} trials -> {output} ({where})",
          flush=True)
    deaths = study.run_local(plans, request.plugin_paths(), workers)
    for death in deaths:
        print(f"a search worker ended early: {death}; its trial stays RUNNING and the same command resumes it",
              file=sys.stderr)
    print()
    for plan in plans:
        print("\n".join(study_summary.study_lines(plan)))
    failed = sum(study_summary.failed_trials(plan) for plan in plans)
    if failed:
        print(f"{failed} trials failed: their run directories keep the traceback in status.json", flush=True)
    return 1 if failed or deaths else 0
