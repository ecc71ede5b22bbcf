"""`framework prepare tasks=...`: each task's prepare_data once (downloads, preprocessing, checks), meant
for a login node before a grid is submitted to compute nodes that may have no network."""

from __future__ import annotations

import argparse
import time

from framework.commands.common import add_request_arguments, read_request


def register(commands) -> None:
    parser = commands.add_parser(
        "prepare", help="run each selected task's prepare_data once (before submitting a grid)",
        description="Builds each selected task's data module with its resolved config and calls prepare_data() "
                    "once per task, in this process. Takes the same KEY=VALUE overrides as `framework run`.",
    )
    add_request_arguments(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.config import Node
    from framework.config.grid import expand
    from framework.config.registry import Registry

    request = read_request(args)
    registry = Registry(request.plugin_paths())
    prepared = set()
    for spec in expand(request, registry):
        # the data depends on the task's own section only: once per distinct task config
        key = (spec.task, repr(sorted(spec.config["task"].items())))
        if key in prepared:
            continue
        prepared.add(key)
        module = registry.get("task", spec.task).load()
        start = time.perf_counter()
        datamodule = module.get_datamodule(Node({**spec.config, "run": {"id": spec.run_id, "dir": ""}}))
        datamodule.prepare_data()
        print(f"{spec.task}: prepared ({time.perf_counter() - start:.1f}s)", flush=True)
    return 0
