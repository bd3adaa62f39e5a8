"""`promise-ledger report`."""

from __future__ import annotations

import click

from streams.cli.errors import NotBuiltYet


@click.command("report", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def command() -> None:
    """(not built yet)"""
    raise NotBuiltYet("report")
