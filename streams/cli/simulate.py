"""`promise-ledger simulate`: a synthetic company's events (to a JSON-lines file for now)."""

from __future__ import annotations

import click

from streams.cli.errors import EXIT_USAGE, CommandError
from streams.contract import InvalidEvent, decoded_to_json_line, iso_to_ms
from streams.simulate import DEFAULT_START_MS, simulate_events

_WRITE_BATCH = 4096


def _parse_start(text: str | None) -> int:
    if text is None:
        return DEFAULT_START_MS
    moment = f"{text}T00:00:00Z" if len(text) == 10 else text
    try:
        return iso_to_ms(moment)
    except InvalidEvent as error:
        raise CommandError(f"bad --start: {error}", EXIT_USAGE) from None


@click.command("simulate")
@click.option("--to-file", "to_file", metavar="FILE", help="Write the events as JSON lines to FILE.")
@click.option("--customers", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--start", metavar="TIME", help="First day, ISO-8601 UTC  [default: 2026-03-02]")
def command(to_file: str | None, customers: int, days: int, seed: int, start: str | None) -> None:
    """Generate a realistic synthetic company's events: the same seed gives the same events."""
    if to_file is None:
        raise CommandError("say where the events go: --to-file FILE", EXIT_USAGE)
    start_ms = _parse_start(start)
    try:
        handle = open(to_file, "wb")  # noqa: SIM115 - closed below, after the error check
    except OSError as error:
        raise CommandError(f"cannot write {to_file}: {error.strerror}", EXIT_USAGE) from None
    with handle:
        lines: list[bytes] = []
        for decoded in simulate_events(customers=customers, days=days, seed=seed, start_ms=start_ms):
            lines.append(decoded_to_json_line(decoded))
            if len(lines) >= _WRITE_BATCH:
                lines.append(b"")
                handle.write(b"\n".join(lines))
                lines.clear()
        if lines:
            lines.append(b"")
            handle.write(b"\n".join(lines))
