"""Queries behind ``promise-ledger report``; they run on ClickHouse 18.16 and on current ClickHouse."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.table import Table

DEPARTMENTS = ("MARKETING", "SALES", "SERVICE")

# Values are bound by clickhouse-driver (%(name)s), never formatted into the SQL text.
SCORECARD_BY_DEPARTMENT = """
SELECT
    department,
    sum(made) AS made_n,
    sum(kept) AS kept_n,
    sum(broken) AS broken_n,
    sum(at_risk) AS at_risk_n,
    sum(complaints_caused) AS complaints_n,
    sum(tone_issues) AS tone_n,
    sum(style_mismatches) AS style_n,
    sum(recovered) AS recovered_n
FROM scorecard_daily
WHERE day >= %(since)s AND (%(department)s = '' OR department = %(department)s)
GROUP BY department
ORDER BY department
"""


class Query(Protocol):
    def execute(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True, slots=True)
class ScorecardRow:
    department: str
    made: int
    kept: int
    broken: int
    at_risk: int
    complaints_caused: int
    tone_issues: int
    style_mismatches: int
    recovered: int

    @property
    def kept_rate(self) -> float | None:
        """Promises kept on time and in full, of those that ended."""
        ended = self.kept + self.broken
        return round(self.kept / ended, 4) if ended else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kept_rate": self.kept_rate}


def read_scorecard(client: Query, since: date, department: str | None = None) -> list[ScorecardRow]:
    rows = client.execute(SCORECARD_BY_DEPARTMENT, {"since": since, "department": department or ""})
    return [ScorecardRow(str(row[0]), *(int(value) for value in row[1:])) for row in rows]


def scorecard_table(rows: list[ScorecardRow], since: date) -> Table:
    """The scorecard as a rich table, as `promise-ledger report` prints it."""
    from rich.table import Table

    table = Table(title=f"Promise Ledger scorecard since {since.isoformat()}", title_justify="left")
    headings = (
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
    )
    for heading in headings:
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
    return table
