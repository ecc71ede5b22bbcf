"""One run end to end: build the task and the optimizer, Lightning fit, validate and test, record.

    run.py              execute(RunSpec): lock, resume, fit, score, write the run folder
    task.py             TaskModel / TaskDataModule (the task contract), epoch-seeded sampling
    parameter_groups.py GroupedModel / ParameterGroup (what an optimizer receives)
    callbacks.py, csv_logs.py, checkpoint_io.py, optimizer_modes.py, preemption.py, run_lock.py,
    trainer_options.py, lightning_speedups.py   what every run adds to Lightning
    data_checks.py, data_files.py, data_cache.py   data that goes wrong is named
    sanity.py, estimate.py, evaluate.py, activations.py   before and after a grid
    environment.py      env.json: what a run ran on

Nothing here is imported by `framework --help`; torch and Lightning are imported inside functions
where a module is also used by light commands.
"""
