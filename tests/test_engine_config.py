"""The engine's TOML config: keys, defaults, and one-line errors naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.contract import ValueLimits
from streams.engine import ConfigError, EngineConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(text)
    return path


def test_every_key_is_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
grace_seconds = 60
first_reply_hours = 8
signoff_hours = 12
at_risk_fraction = 0.5
lookback_days = 14
dedupe_window_hours = 48
tone_phrases = ["per our records"]

[severity]
raise_one_level_at = 500.0
raise_two_levels_at = 1000.0
""",
        )
    )
    assert (config.grace_ms, config.first_reply_ms, config.signoff_ms) == (
        60_000,
        8 * 3_600_000,
        12 * 3_600_000,
    )
    assert (config.at_risk_fraction, config.lookback_ms, config.dedupe_window_ms) == (
        0.5,
        14 * 86_400_000,
        48 * 3_600_000,
    )
    assert config.tone_phrases == ("per our records",)
    assert (config.severity_raise_one_level_at, config.severity_raise_two_levels_at) == (500.0, 1000.0)


def test_defaults_follow_the_spec() -> None:
    config = EngineConfig()
    assert (config.grace_ms, config.first_reply_ms, config.signoff_ms, config.at_risk_fraction) == (
        300_000,
        86_400_000,
        86_400_000,
        0.75,
    )
    assert config.lookback_ms == 30 * 86_400_000
    assert "I'm afraid" in config.tone_phrases


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grace = 5", "unknown key 'grace'"),
        ("[severity]\nhigh = 1", "unknown key 'severity.high'"),
        ("grace_seconds = -1", "'grace_seconds' must be a number >= 0, got -1"),
        ("grace_seconds = 1.5", "'grace_seconds' must be an integer, got 1.5"),
        ("at_risk_fraction = 1.5", "'at_risk_fraction' must be a number between 0 and 1, got 1.5"),
        ("tone_phrases = ['ok', '']", "'tone_phrases' must be a list of non-empty strings"),
        ("lookback_days = 'long'", "'lookback_days' must be a number >= 0, got 'long'"),
        ("grace_seconds = ", "is not valid TOML"),
        ("[severity]\nraise_one_level_at = 10.0\nraise_two_levels_at = 5.0", "must not be below"),
    ],
)
def test_a_bad_file_is_a_one_line_error_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")


def test_the_limits_table_sets_what_a_valid_value_is(tmp_path: Path) -> None:
    limits = load_config(
        write(
            tmp_path,
            """
[limits]
timestamps_from = 2010-01-01T00:00:00Z
timestamps_before = "2060-01-01T00:00:00+01:00"
deadline_within_days = 365
max_quantity = 1000
max_id_length = 64
max_text_length = 2000
max_features = 10
""",
        )
    ).limits
    assert limits == ValueLimits(
        timestamps_from_ms=1_262_304_000_000,
        timestamps_before_ms=2_840_137_200_000,
        deadline_within_days=365,
        max_quantity=1000,
        max_id_length=64,
        max_text_length=2000,
        max_features=10,
    )
    assert EngineConfig().limits == ValueLimits()  # without the table: SPEC's defaults
    assert load_config(write(tmp_path, "[limits]\nmax_features = 5\n")).limits.max_quantity == 2**31 - 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("limits = 3", "'limits' must be a table ([limits])"),
        ("[limits]\nmax_ids = 3", "unknown key 'limits.max_ids'"),
        (
            "[limits]\nmax_quantity = 3000000000",
            "'limits.max_quantity' must be an integer from 0 to 2147483647",
        ),
        ("[limits]\nmax_features = -1", "'limits.max_features' must be an integer from 0 to"),
        ("[limits]\ntimestamps_from = 2010-01-01T00:00:00", "'limits.timestamps_from' needs a time zone"),
        ("[limits]\ntimestamps_before = 'soon'", "'limits.timestamps_before': not an ISO-8601 timestamp"),
        ("[limits]\ntimestamps_from = 2200-01-01", "'limits.timestamps_from' must come before"),
    ],
)
def test_bad_limits_name_the_key(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        load_config(write(tmp_path, text))
