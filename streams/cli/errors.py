"""Exit codes and the one-line error every subcommand uses for bad input."""

from __future__ import annotations

import click

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REJECTED_INPUT = 3


class CommandError(click.ClickException):
    """A failure the user can act on: printed as one line, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NotBuiltYet(CommandError):
    def __init__(self, command: str) -> None:
        super().__init__(f"'{command}' is not built yet", exit_code=EXIT_USAGE)
