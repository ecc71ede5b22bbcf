"""DDP in processes that Lightning spawns (`ddp_spawn`), which close their process group before they exit.

A spawned process that exits with its gloo process group still open can die with SIGABRT ("terminate
called without an active exception"): gloo's worker threads are torn down during interpreter
finalization (pytorch/pytorch#190489). Under CPU load it happened often enough to fail a run in one
CI pass of two. Each fit, validate and test spawns fresh processes, so the group is closed at the end of
each one: nothing in the spawned process talks to the other ranks after the strategy's teardown.
"""

from __future__ import annotations

import torch.distributed
from lightning.pytorch.strategies import DDPStrategy


class SpawnedDDP(DDPStrategy):
    """Lightning's `ddp_spawn` (DDP, processes started with `spawn`) that destroys its process group in
    `teardown`. (A module-level class: the launcher pickles the strategy into the spawned processes.)"""

    def __init__(self) -> None:
        super().__init__(start_method="spawn")

    def teardown(self) -> None:
        super().teardown()
        # the main process never joins the group; a spawned one leaves it here, while the interpreter is whole
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
