"""A seeded synthetic company whose events exercise every rule of the engine."""

from streams.simulate.company import DEFAULT_START_MS, simulate_events

__all__ = ["DEFAULT_START_MS", "simulate_events"]
