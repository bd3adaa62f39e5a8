"""`promise-ledger report`: the shared scorecard, from ClickHouse."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import click

from streams.cli.errors import CommandError
from streams.report import DEPARTMENTS, ScorecardRow, read_scorecard
from streams.settings import Settings


def _render(rows: list[ScorecardRow], since: date) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Promise Ledger scorecard since {since.isoformat()}", title_justify="left")
    for heading in (
        "department",
        "made",
        "kept",
        "broken",
        "kept on time & in full",
        "at risk",
        "complaints caused",
        "tone",
        "style",
        "recovered",
    ):
        table.add_column(heading, justify="left" if heading == "department" else "right")
    for row in rows:
        rate = "—" if row.kept_rate is None else f"{row.kept_rate:.0%}"
        table.add_row(
            row.department,
            str(row.made),
            str(row.kept),
            str(row.broken),
            rate,
            str(row.at_risk),
            str(row.complaints_caused),
            str(row.tone_issues),
            str(row.style_mismatches),
            str(row.recovered),
        )
    if not rows:
        table.caption = "no alignment events in ClickHouse for this period yet"
    Console().print(table)


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
        _render(rows, first_day)
