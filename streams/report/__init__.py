"""The marketing / sales / service scorecard, read from ClickHouse."""

from streams.report.scorecard import DEPARTMENTS, ScorecardRow, read_scorecard, scorecard_table

__all__ = ["DEPARTMENTS", "ScorecardRow", "read_scorecard", "scorecard_table"]
