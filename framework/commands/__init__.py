"""One module per `framework` command.

Each module defines `register(commands)`, which adds its sub-parser to argparse's sub-parsers and sets
`handler` as its default, and `handler(args) -> int` (the exit status). A module imports only light engine
modules at import time; torch, Lightning and matplotlib are imported inside the handlers, so
`framework --help` stays fast. Add a command by adding a module and its name to `COMMANDS`.
"""

COMMANDS = ("run", "status", "cancel", "prepare", "evaluate", "predict", "estimate", "tune_batch", "plot", "report",
            "listing", "conformance")
