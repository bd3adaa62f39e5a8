"""`promise-ledger worker`."""

from __future__ import annotations

import click

from streams.cli.errors import NotBuiltYet


@click.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def command() -> None:
    """(not built yet)"""
    raise NotBuiltYet("worker")
