"""Entry point of the ``promise-ledger`` console script."""

from __future__ import annotations

import sys

import click

from streams import __version__
from streams.cli import dlq, explain, notify, replay, report, simulate, sink, watch, worker
from streams.cli.errors import EXIT_USAGE, CommandError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="promise-ledger")
def cli() -> None:
    """Promise Ledger: what marketing, sales and service promised each customer, and whether it happened.

    \b
    Offline, no servers needed:
      promise-ledger simulate --to-file company.jsonl --customers 200
      promise-ledger replay company.jsonl --until 2026-12-31T00:00:00Z

    \b
    Live, on Kafka and ClickHouse (deploy/local/stack up):
      promise-ledger worker        correlate events as they arrive
      promise-ledger report        the marketing / sales / service scorecard
      promise-ledger dlq counts    dead letters by reason; `dlq redrive` sends them back after a fix
    """


for module in (replay, worker, sink, notify, simulate, report, explain, watch, dlq):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; usage errors are one line on stderr, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="promise-ledger", standalone_mode=False)
    except CommandError as error:
        click.echo(f"promise-ledger: {error.format_message()}", err=True)
        return error.exit_code
    except click.UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx else "promise-ledger: "
        click.echo(f"{where}{error.format_message()} (see --help)", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("promise-ledger: aborted", err=True)
        return 130
    except click.exceptions.Exit as done:
        return done.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
