"""`promise-ledger report`: the shared scorecard, from ClickHouse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from streams.cli.errors import CommandError
from streams.report import DEPARTMENTS, read_scorecard, scorecard_table
from streams.settings import Settings


@click.command("report")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day (YYYY-MM-DD, UTC)  [default: 30 days ago]",
)
@click.option(
    "--department",
    type=click.Choice([*DEPARTMENTS, "UNATTRIBUTED"], case_sensitive=False),
    default=None,
    help="Only this department.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per department, for machines.")
def command(since: datetime | None, department: str | None, as_json: bool) -> None:
    """The marketing / sales / service scorecard from ClickHouse.

    \b
    Per department: promises made, kept, broken, the rate kept on time and in full, promises at risk,
    complaints whose root cause was the department, discouraged-tone replies, style mismatches and
    recovered complaints. Reads PL_CLICKHOUSE_* (see `deploy/local/stack env`).
    """
    from clickhouse_driver.errors import Error as ClickHouseError
    from clickhouse_driver.errors import ErrorCodes, ServerException

    from streams.cli.service import clickhouse_client

    first_day = since.date() if since else (datetime.now(UTC) - timedelta(days=30)).date()
    client = clickhouse_client(Settings.from_env())
    try:
        rows = read_scorecard(client, first_day, department.upper() if department else None)
    except ServerException as error:
        if error.code == ErrorCodes.UNKNOWN_TABLE:
            raise CommandError("no scorecard in ClickHouse yet: `promise-ledger sink` creates it") from None
        raise CommandError(f"ClickHouse refused the scorecard query (code {error.code})") from None
    except (ClickHouseError, OSError, EOFError) as error:
        raise CommandError(f"cannot read the scorecard from ClickHouse ({type(error).__name__})") from None
    finally:
        client.disconnect()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_dict(), sort_keys=True))
    else:
        from rich.console import Console

        Console().print(scorecard_table(rows, first_day))
