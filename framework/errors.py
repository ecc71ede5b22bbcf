"""User-facing errors: each carries a message that names the file, key or run and the fix.

The CLI prints them without a traceback and exits with `exit_code`.
"""

from __future__ import annotations


class FrameworkError(Exception):
    """An error caused by the user's input, reported as one line per problem."""

    exit_code = 2


class ConfigError(FrameworkError):
    """Every problem found while resolving a configuration, reported at once."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = [f"invalid configuration ({len(self.problems)} {noun}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class PluginError(FrameworkError):
    """A task or optimizer plugin that is missing, malformed or fails to import."""


class DivergedError(Exception):
    """Raised inside a run when the training loss stops being finite."""


class TrialPruned(Exception):
    """Raised inside a run when its search's pruner stops it (framework/training/pruning.py): recorded as
    `pruned`, neither a failure nor a result to choose from."""


class DataError(FrameworkError):
    """Data that cannot be used: an empty split, a missing or corrupt file, a truncated annotation file.
    The message names the split, the sample and the file where they are known."""

    def __init__(self, message: str):
        if message.startswith("Caught DataError") and "Traceback" in message:
            # Re-raised by torch from a DataLoader worker with the whole worker traceback as the message:
            # keep the original one-line message (its last line) so run errors stay one readable line.
            message = message.rstrip().splitlines()[-1].split("DataError: ", 1)[-1] + " (in a data-loader worker)"
        super().__init__(message)


def one_line(exc: BaseException, limit: int = 500) -> str:
    """`Type: message` on one line, for status files and tables (a ConfigError lists its problems on the
    lines after the first), cut at `limit` characters."""
    return " ".join(line.strip() for line in f"{type(exc).__name__}: {exc}".strip().splitlines())[:limit]
