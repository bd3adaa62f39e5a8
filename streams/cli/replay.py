"""`promise-ledger replay`."""

from __future__ import annotations

import click

from streams.cli.errors import NotBuiltYet


@click.command("replay", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def command() -> None:
    """(not built yet)"""
    raise NotBuiltYet("replay")
