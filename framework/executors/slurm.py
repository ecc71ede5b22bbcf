"""SLURM executor: the grid's cells as job arrays through submitit, and what the scheduler says of them.

`submit` groups the cells by the resources they ask for (the resolved `engine.sbatch_args`, devices,
setup lines), submits one job array per group and returns at once; each cell's run directory records
`pending` and its job id, under the cell's lock: a cell another process holds (trains) is reported
`locked by ...` and neither cleared by --force nor submitted. The jobs run `slurm_job.CellJob`, which trains the cell through the same
`run.execute` as the local executor. `framework status` reads the run directories and asks `sacct` about
the jobs that have not recorded an outcome; `framework cancel` runs `scancel` on them.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config.devices import identity_device
from framework.config.grid import RunSpec
from framework.errors import FrameworkError
from framework.results import run_folder

SUBMISSIONS_FILE = "submissions.jsonl"
DEFAULT_TIME_MIN = 60
# sbatch_args that say where a job may run, which a cluster may require of every job: the plot job takes them
PLACEMENT = ("partition", "account", "qos", "reservation", "constraint", "clusters", "wckey")
PLOT_RESOURCES = {"time": 30, "nodes": 1, "cpus_per_task": 2, "mem": "8G"}  # heatmaps: a few CPUs, no GPU
# sacct states of a job that may still write its outcome
ALIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
         "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"}
IN_FLIGHT = ("pending", "running", "requeued")  # states a cell records while a job owns it


def slurm_folder(engine: Mapping[str, Any]) -> Path:
    folder = engine["slurm"].get("folder")
    return Path(folder) if folder else Path(engine["output_dir"]) / ".slurm"


def parse_minutes(value: Any) -> int:
    """sbatch's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(1, math.ceil(value))
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(value).strip())
    if not match:
        raise FrameworkError(f"engine.sbatch_args.time: cannot read {value!r}; use minutes or [D-]HH:MM:SS")
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + int(first) * 3600 + int(second or 0) * 60 + int(third or 0)
    elif third is not None:  # HH:MM:SS
        seconds = int(first) * 3600 + int(second) * 60 + int(third)
    elif second is not None:  # MM:SS
        seconds = int(first) * 60 + int(second)
    else:
        seconds = int(first) * 60
    return max(1, math.ceil(seconds / 60))


def _submitit_names() -> set[str]:
    from submitit.slurm.slurm import _make_sbatch_string

    return set(inspect.signature(_make_sbatch_string).parameters) - {"command", "folder", "map_count", "additional_parameters"}


def _gpus_per_node(engine: Mapping[str, Any], args: Mapping[str, Any]) -> int | None:
    """The GPUs per node to ask for: `engine.devices` for a cell that trains on cuda (identity_device: the
    accelerator, or GPU options in sbatch_args) unless sbatch_args counts them itself, which must then agree
    with the processes per node; None: ask for none. Refused here, before sbatch sees it: a mismatch that
    would leave processes without a GPU, cpus_per_gpu beside cpus_per_task or without any GPU."""
    devices = engine["devices"]
    if "cpus_per_gpu" in args and "cpus_per_task" in args:
        raise FrameworkError("engine.sbatch_args: cpus_per_task and cpus_per_gpu exclude each other (sbatch refuses "
                             "both); keep one")
    if identity_device({**engine, "executor": "slurm"}) != "cuda":  # as a job decides it, not this machine
        if "cpus_per_gpu" in args:
            raise FrameworkError(f"engine.sbatch_args.cpus_per_gpu: the cell asks for no GPU (engine.accelerator="
                                 f"{engine['accelerator']}); use cpus_per_task, or engine.accelerator=gpu")
        return None
    gres = re.fullmatch(r"gpu(?::[^:,]+)?:(\d+)", str(args.get("gres", "")))
    counts = {"gres": int(gres[1]) if gres else None, "gpus_per_node": args.get("gpus_per_node")}
    for key, count in counts.items():
        if count is not None and count != devices:
            raise FrameworkError(f"engine.sbatch_args.{key}={args[key]} asks for {count} GPUs per node, but engine.devices="
                                 f"{devices} processes per node use one each; set engine.devices={count} or leave {key} out")
    if any(key in args for key in ("gres", "gpus", "gpus_per_node", "gpus_per_task", "tres_per_task")):
        return None  # the user's own GPU request, checked above where it can be counted
    return devices


def sbatch_parameters(config: Mapping[str, Any], task: str) -> dict[str, Any]:
    """submitit SlurmExecutor parameters of one cell: engine settings, then the layered sbatch_args."""
    engine = config["engine"]
    devices = engine["devices"]
    parameters: dict[str, Any] = {
        "job_name": f"framework-{task}",
        "nodes": engine.get("nodes", 1),  # multi-node DDP: nodes x devices processes in all
        "ntasks_per_node": devices,  # one process per device: Lightning's DDP reads its rank from SLURM
        "array_parallelism": engine["slurm"]["array_parallelism"],
        "setup": list(engine["slurm"]["setup"]),
        "time": DEFAULT_TIME_MIN,
    }
    gpus = _gpus_per_node(engine, {key.replace("-", "_"): value for key, value in engine["sbatch_args"].items()})
    if gpus:
        parameters["gpus_per_node"] = gpus
    known, extra = _submitit_names(), {}
    for key, value in engine["sbatch_args"].items():
        name = key.replace("-", "_")
        if name == "time":
            parameters["time"] = parse_minutes(value)
        elif name == "cpus_per_gpu":
            # each process drives one GPU, so these are the CPUs of each task; as --cpus-per-gpu they would
            # need --gpus-per-task (submitit warns), which hides a node's other GPUs from each process and
            # breaks Lightning's local-rank -> device mapping
            parameters["cpus_per_task"] = value
        elif name in known:
            parameters[name] = value
        else:
            extra[name] = value
    parameters["time"] = max(1, math.ceil(parameters["time"] * engine["slurm"]["time_factor"]))
    if extra:
        parameters["additional_parameters"] = extra
    return parameters


def plot_parameters(engine: Mapping[str, Any], arrays: list[str]) -> dict[str, Any]:
    """submitit parameters of the `engine.slurm.plot` job, after the job arrays `arrays`: the grid's
    placement (partition, account, qos, ...; `engine.sbatch_args`), its own small request (PLOT_RESOURCES)."""
    known, extra = _submitit_names(), {}
    parameters: dict[str, Any] = {"job_name": "framework-plot", **PLOT_RESOURCES, "setup": list(engine["slurm"]["setup"]),
                                  "dependency": "afterany:" + ":".join(arrays)}
    for key, value in engine["sbatch_args"].items():
        name = key.replace("-", "_")
        if name in PLACEMENT:
            (parameters if name in known else extra)[name] = value
    if extra:  # reservation, clusters: written as #SBATCH --<name>=<value>
        parameters["additional_parameters"] = extra
    return parameters


def scheduler_states(job_ids: Iterable[str]) -> dict[str, str]:
    """The latest sacct state of each job id ('123' or array task '123_4'); unknown ids are left out."""
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    if shutil.which("sacct") is None:
        raise FrameworkError("sacct not found: `framework status` needs SLURM's accounting (sacct) on this machine")
    masters = sorted({j.split("_")[0] for j in ids})
    done = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(masters)],
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise FrameworkError(f"sacct failed: {done.stderr.strip() or done.stdout.strip()}")
    states: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if "|" not in line:
            continue
        job, state = line.split("|", 1)
        state = state.split()[0] if state.strip() else "UNKNOWN"
        array = re.fullmatch(r"(\d+)_\[(.+)\]", job)  # pending array tasks: 123_[0-7%2]
        if array:
            for part in array[2].split("%")[0].split(","):
                low, _, high = part.partition("-")
                for task in range(int(low), int(high or low) + 1):
                    states[f"{array[1]}_{task}"] = state
        else:
            states[job] = state
    return {j: states[j] for j in ids if j in states}


def reconcile(status: Mapping[str, Any], scheduler: Mapping[str, str]) -> tuple[str, str | None]:
    """A cell's state from its status.json and the scheduler: (state, error or note)."""
    state, job = status.get("state", "unknown"), status.get("job_id")  # see run_folder.read_status_and_job
    if state not in IN_FLIGHT or not job or job not in scheduler:
        return state, status.get("error")
    queued = scheduler[job]
    if queued == "REQUEUED" or (queued == "PENDING" and state == "requeued"):
        return "requeued", None
    if queued == "PENDING":
        return "pending", None
    if queued in ALIVE:
        return "running", None
    return "failed", f"SLURM job {job} ended {queued} before the run recorded an outcome; the next `framework run` resubmits it"


def in_flight(runs: list[RunSpec]) -> dict[str, str]:
    """Cells a SLURM job still owns (pending, running or requeued), by run_id -> job id."""
    owned = {}
    for spec in runs:
        status = run_folder.read_status_and_job(spec.run_dir(spec.config["engine"]["output_dir"]))
        if status.get("state") in IN_FLIGHT and status.get("job_id"):
            owned[spec.run_id] = str(status["job_id"])
    if not owned or shutil.which("sacct") is None:
        return {}
    states = scheduler_states(owned.values())
    return {run_id: job for run_id, job in owned.items() if states.get(job) in ALIVE}


@dataclass
class Submission:
    jobs: dict[str, str] = field(default_factory=dict)  # run_id -> job id
    arrays: list[str] = field(default_factory=list)  # one job (array) id per resource group
    plot_job: str | None = None
    folder: Path | None = None
    locked: dict[str, str] = field(default_factory=dict)  # run_id -> "locked by ..." (left alone)


def _prepare(spec: RunSpec, force: bool) -> str | None:
    """Write the cell's config and `pending` status (with --force, first clear what an earlier attempt
    left) under its lock; returns `locked by ...` instead when another process holds it: deleting or
    resubmitting a cell that is being trained would lose or duplicate its training."""
    from framework.training.run_lock import RunLock

    run_dir = spec.run_dir(spec.config["engine"]["output_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir) as holder:
        if holder is not None:
            return f"locked by {holder.describe()}"
        if force:
            run_folder.clear_run_dir(run_dir)
        run_folder.write_config(run_dir, spec.config)
        # pending is written before sbatch: once submitted, status.json is the job's alone to write
        run_folder.write_status(run_dir, "pending", task=spec.task, optimizer=spec.optimizer, run_id=spec.run_id,
                                sweep=spec.sweep, submitted=time.time(), error=None, traceback=None)
    return None


def resource_groups(runs: list[RunSpec]) -> list[tuple[dict[str, Any], list[RunSpec]]]:
    """The cells grouped by what they ask sbatch for: one job array per group, in the grid's order."""
    groups: dict[str, tuple[dict[str, Any], list[RunSpec]]] = {}
    for spec in runs:
        parameters = sbatch_parameters(spec.config, spec.task)
        key = json.dumps(parameters, sort_keys=True, default=str)
        groups.setdefault(key, (parameters, []))[1].append(spec)
    return list(groups.values())


def sbatch_lines(runs: list[RunSpec]) -> list[str]:
    """`framework run --dry-run` with engine.executor=slurm: the #SBATCH lines of each job array that
    `submit` would send for the cells not yet finished, rendered by submitit itself, so what is read
    here is what sbatch would get (a refused combination of options stops the dry run the same way)."""
    todo = [spec for spec in runs if spec.config["engine"]["executor"] == "slurm" and (run_folder.read_status(
        spec.run_dir(spec.config["engine"]["output_dir"])) or {}).get("state") not in run_folder.FINISHED]
    if not todo:  # a local grid's dry run: no submitit import
        return []
    from submitit.slurm.slurm import _make_sbatch_string

    lines = []
    for number, (parameters, specs) in enumerate(resource_groups(todo), 1):
        folder = slurm_folder(specs[0].config["engine"]) / "<submission time>" / "%j"
        script = _make_sbatch_string(command="<the cell's job>", folder=folder, map_count=len(specs), **parameters)
        cells = ", ".join(sorted({f"{spec.task}/{spec.optimizer}" for spec in specs}))
        lines.append(f"\nsbatch job array {number}: {len(specs)} cell{'s' * (len(specs) != 1)} ({cells})")
        lines += [line for line in script.splitlines() if line.startswith("#SBATCH")]
    return lines


def submit(runs: list[RunSpec], plugin_paths: list[str], force: bool = False) -> Submission:
    """Submit every cell of `runs` (the caller leaves out finished and in-flight ones); returns at once."""
    import submitit

    from framework.executors.slurm_job import CellJob, plot_job

    submission = Submission()
    if not runs:
        return submission
    engine = runs[0].config["engine"]
    folder = slurm_folder(engine) / time.strftime("%Y%m%d-%H%M%S")
    submission.folder = folder
    for parameters, specs in resource_groups(runs):
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=engine["slurm"]["max_requeues"])
        executor.update_parameters(**parameters)
        for spec in specs:  # the run directory exists, with the cell's config, before any job starts
            locked = _prepare(spec, force)
            if locked:
                submission.locked[spec.run_id] = locked
        specs = [spec for spec in specs if spec.run_id not in submission.locked]
        if not specs:
            continue
        try:
            with executor.batch():
                jobs = [executor.submit(CellJob(spec, plugin_paths)) for spec in specs]
        except Exception as exc:  # sbatch refused: name the group's options, which are the usual cause
            for spec in specs:
                run_folder.write_status(spec.run_dir(spec.config["engine"]["output_dir"]), "failed",
                                        error=f"not submitted: sbatch refused it ({exc})")
            raise FrameworkError(f"sbatch refused the jobs of {specs[0].task} ({exc}); check engine.sbatch_args") from exc
        for spec, job in zip(specs, jobs):
            run_folder.write_job(spec.run_dir(spec.config["engine"]["output_dir"]), job.job_id, folder)
            submission.jobs[spec.run_id] = job.job_id
        submission.arrays.append(jobs[0].job_id.split("_")[0])
    if not submission.arrays:
        return submission  # every cell was locked: nothing submitted, nothing to log
    if engine["slurm"]["plot"]:
        executor = submitit.SlurmExecutor(folder=folder / "%j")
        executor.update_parameters(**plot_parameters(engine, submission.arrays))
        submission.plot_job = executor.submit(plot_job, str(engine["output_dir"])).job_id
    record = {"time": time.time(), "folder": str(folder), "arrays": submission.arrays,
              "plot_job": submission.plot_job, "jobs": submission.jobs}
    log = slurm_folder(engine) / SUBMISSIONS_FILE
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return submission


def submitted_plot_jobs(output_dir: str | Path, folder: str | Path | None = None) -> list[str]:
    log = (Path(folder) if folder else Path(output_dir) / ".slurm") / SUBMISSIONS_FILE
    if not log.is_file():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [record["plot_job"] for record in records if record.get("plot_job")]


def cancel(job_ids: Iterable[str]) -> list[str]:
    """scancel the given jobs (array tasks by their own ids); returns those it was asked to cancel."""
    ids = sorted({str(j) for j in job_ids if j})
    if ids:
        if shutil.which("scancel") is None:
            raise FrameworkError("scancel not found: run `framework cancel` where SLURM's commands are installed")
        done = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise FrameworkError(f"scancel failed: {done.stderr.strip()}")
    return ids
