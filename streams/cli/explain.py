"""`promise-ledger explain ID`: one customer's ledger as a timeline, from ClickHouse or from event files."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from streams.cli.errors import EXIT_FAILURE, EXIT_REJECTED_INPUT, EXIT_USAGE, CommandError
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.explain import Story


def _from_clickhouse(subject: str) -> Story | None:
    from clickhouse_driver.errors import Error as ClickHouseError
    from clickhouse_driver.errors import ErrorCodes, ServerException

    from streams.cli.service import clickhouse_client
    from streams.explain import read_story

    client = clickhouse_client(Settings.from_env())
    try:
        return read_story(client, subject)
    except ServerException as error:
        if error.code == ErrorCodes.UNKNOWN_TABLE:
            raise CommandError("no ledger in ClickHouse yet: `promise-ledger sink` creates it") from None
        raise CommandError(f"ClickHouse refused the ledger query (code {error.code})") from None
    except (ClickHouseError, OSError, EOFError) as error:
        raise CommandError(f"cannot read the ledger from ClickHouse ({type(error).__name__})") from None
    finally:
        client.disconnect()


def _from_files(
    subject: str, files: tuple[str, ...], until: str | None, config_path: str | None
) -> Story | None:
    from streams.cli.replay import _load_config, _parse_until
    from streams.explain import ReplaySource, SourceError

    source = ReplaySource(
        list(files),
        config=_load_config(config_path),
        until=_parse_until(until) if until is not None else None,
        partitions=Settings.from_env().partitions,
    )
    try:
        return source.story(subject)
    except SourceError as error:
        raise CommandError(str(error), EXIT_REJECTED_INPUT) from None


@click.command("explain")
@click.argument("subject", metavar="ID")
@click.option(
    "--from",
    "files",
    multiple=True,
    metavar="FILE",
    help="Replay these input-event files (JSON lines or Avro containers) instead of reading ClickHouse; "
    "repeat for several files, read in order.",
)
@click.option("--until", metavar="TIME", help="With --from: fire every deadline before TIME (ISO-8601 UTC).")
@click.option("--config", "config_path", metavar="FILE", help="With --from: engine settings (TOML).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the timeline.")
def command(
    subject: str, files: tuple[str, ...], until: str | None, config_path: str | None, as_json: bool
) -> int:
    """The ledger of the customer ID names: a customer, promise or ticket id (as in a Slack alert).

    \b
    Each promise with its department and terms, its amendments and approvals, the fulfilments that
    counted and those that came late, at-risk warnings, how it ended and the alerts raised; then each
    complaint with the promises it was traced to and its root department.

    Reads ClickHouse (PL_CLICKHOUSE_*); with --from it replays event files instead, no stack needed,
    and shows the input events too (ClickHouse keeps only what the ledger concluded).
    """
    if (until or config_path) and not files:
        raise CommandError("--until and --config apply to --from FILE only", EXIT_USAGE)
    for path in files:
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CommandError(f"cannot read {path}", EXIT_USAGE)
    story = _from_files(subject, files, until, config_path) if files else _from_clickhouse(subject)
    if story is None:
        where = "in " + ", ".join(files) if files else "in ClickHouse"
        raise CommandError(f"no customer, promise or ticket {subject!r} {where}", EXIT_FAILURE)
    from streams.explain import story_renderable

    if as_json:
        click.echo(json.dumps(story.to_dict(), ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(story_renderable(story))
    return 0
