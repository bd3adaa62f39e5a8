"""Engine settings and their TOML form (stdlib ``tomllib``); a bad file is a one-line ``ConfigError``."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from streams.contract.events import DEFAULT_LIMITS, ValueLimits
from streams.contract.timestamps import InvalidEvent, iso_to_ms, to_epoch_ms

DEFAULT_TONE_PHRASES = (
    "unfortunately",
    "I'm afraid",
    "obviously",
    "wrong department",
    "our policy",
    "our procedure",
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class ConfigError(ValueError):
    """A config file the engine cannot use; the message is one line naming the key."""


def _phrase_pattern(phrase: str) -> str:
    """Whole words, any run of spaces between them, straight or curly apostrophes alike. The match
    must also start after a non-word character: ``_tone_pattern`` checks that once for all phrases."""
    words = phrase.split()
    escaped = ["".join("['’]" if char in "'’" else re.escape(char) for char in word) for word in words]
    return r"\s+".join(escaped) + r"(?!\w)"


def _tone_pattern(phrases: tuple[str, ...]) -> str:
    # Longest first, so "our policy" wins over a shorter phrase it contains. The word-start lookbehind
    # is tested once per position, not once per phrase: the same matches, about 3.5 times faster.
    ordered = sorted(phrases, key=len, reverse=True)
    if not ordered:
        return r"(?!)"
    return r"(?<!\w)(?:" + "|".join(_phrase_pattern(phrase) for phrase in ordered) + ")"


def phrase_key(text: str) -> str:
    """The form a phrase or a matched text is compared in: lower case, straight apostrophes, one space."""
    return " ".join(text.replace("’", "'").lower().split())


@dataclass(frozen=True, slots=True)
class EngineConfig:
    grace_seconds: int = 300
    first_reply_hours: float = 24.0
    signoff_hours: float = 24.0
    at_risk_fraction: float = 0.75
    lookback_days: float = 30.0
    dedupe_window_hours: float = 168.0
    tone_phrases: tuple[str, ...] = DEFAULT_TONE_PHRASES
    #: customer value (sum of OrderPlaced.amount) from which an alert's severity goes up one level
    severity_raise_one_level_at: float = 10_000.0
    #: ... and from which it goes up two levels
    severity_raise_two_levels_at: float = 50_000.0
    #: what a valid input value is (SPEC §3), for the worker and replay alike: the ``[limits]`` table
    limits: ValueLimits = DEFAULT_LIMITS
    tone_regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    tone_canonical: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("grace_seconds", "first_reply_hours", "signoff_hours", "lookback_days"):
            _require(name, getattr(self, name), minimum=0)
        _require("dedupe_window_hours", self.dedupe_window_hours, minimum=0)
        fraction = self.at_risk_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ConfigError(f"'at_risk_fraction' must be a number between 0 and 1, got {fraction!r}")
        _require("severity_raise_one_level_at", self.severity_raise_one_level_at, minimum=0)
        _require("severity_raise_two_levels_at", self.severity_raise_two_levels_at, minimum=0)
        if self.severity_raise_two_levels_at < self.severity_raise_one_level_at:
            raise ConfigError(
                "'severity_raise_two_levels_at' must not be below 'severity_raise_one_level_at'"
            )
        phrases = self.tone_phrases
        if not isinstance(phrases, list | tuple) or not all(
            isinstance(phrase, str) and phrase.strip() for phrase in phrases
        ):
            raise ConfigError(f"'tone_phrases' must be a list of non-empty strings, got {phrases!r}")
        object.__setattr__(self, "tone_phrases", tuple(phrases))
        canonical = {phrase_key(phrase): phrase for phrase in phrases}
        object.__setattr__(self, "tone_canonical", canonical)
        object.__setattr__(self, "tone_regex", re.compile(_tone_pattern(self.tone_phrases), re.IGNORECASE))

    @property
    def grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    @property
    def first_reply_ms(self) -> int:
        return int(self.first_reply_hours * HOUR_MS)

    @property
    def signoff_ms(self) -> int:
        return int(self.signoff_hours * HOUR_MS)

    @property
    def lookback_ms(self) -> int:
        return int(self.lookback_days * DAY_MS)

    @property
    def dedupe_window_ms(self) -> int:
        return int(self.dedupe_window_hours * HOUR_MS)


def _require(name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"'{name}' must be a number >= {minimum}, got {value!r}")


_KEYS = {
    "grace_seconds",
    "first_reply_hours",
    "signoff_hours",
    "at_risk_fraction",
    "lookback_days",
    "dedupe_window_hours",
    "tone_phrases",
}
_SEVERITY_KEYS = {"raise_one_level_at", "raise_two_levels_at"}
#: ``[limits]`` keys -> ValueLimits fields; the two moments are TOML datetimes (or ISO strings)
_LIMIT_KEYS = {
    "timestamps_from": "timestamps_from_ms",
    "timestamps_before": "timestamps_before_ms",
    "deadline_within_days": "deadline_within_days",
    "max_quantity": "max_quantity",
    "max_id_length": "max_id_length",
    "max_text_length": "max_text_length",
    "max_features": "max_features",
}


def _moment_ms(key: str, value: Any) -> int:
    if type(value) is date:  # a bare TOML date: midnight UTC
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"'limits.{key}' needs a time zone (add Z for UTC), got {value.isoformat()}")
        return int(to_epoch_ms(value))
    if isinstance(value, str):
        try:
            return iso_to_ms(value)
        except InvalidEvent as error:
            raise ConfigError(f"'limits.{key}': {error}") from None
    raise ConfigError(f"'limits.{key}' must be a date and time, got {value!r}")


def limits_from_mapping(table: Any) -> ValueLimits:
    """The ``[limits]`` table: keys not given keep SPEC's defaults."""
    if not isinstance(table, dict):
        raise ConfigError("'limits' must be a table ([limits])")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _LIMIT_KEYS:
            raise ConfigError(f"unknown key 'limits.{key}'")
        settings[_LIMIT_KEYS[key]] = _moment_ms(key, value) if key.startswith("timestamps_") else value
    try:
        return ValueLimits(**settings)
    except ValueError as error:  # names the ValueLimits field; say the key the user wrote
        message = str(error)
        for key, name in _LIMIT_KEYS.items():
            message = message.replace(f"'{name}'", f"'limits.{key}'")
        raise ConfigError(message) from None


def config_from_mapping(data: dict[str, Any]) -> EngineConfig:
    """Build a config from parsed TOML: top-level keys plus ``[severity]`` and ``[limits]`` tables."""
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key == "severity":
            if not isinstance(value, dict):
                raise ConfigError("'severity' must be a table ([severity])")
            for severity_key, threshold in value.items():
                if severity_key not in _SEVERITY_KEYS:
                    raise ConfigError(f"unknown key 'severity.{severity_key}'")
                settings[f"severity_{severity_key}"] = threshold
        elif key == "limits":
            settings["limits"] = limits_from_mapping(value)
        elif key in _KEYS:
            settings[key] = value
        else:
            raise ConfigError(f"unknown key '{key}'")
    if "grace_seconds" in settings and not isinstance(settings["grace_seconds"], int):
        raise ConfigError(f"'grace_seconds' must be an integer, got {settings['grace_seconds']!r}")
    return EngineConfig(**settings)


def load_config(path: str | Path) -> EngineConfig:
    """Read a TOML config file; every problem is a one-line ``ConfigError`` naming the file."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from None
    try:
        return config_from_mapping(data)
    except ConfigError as error:
        raise ConfigError(f"config {path}: {error}") from None
