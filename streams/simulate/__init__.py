"""A seeded synthetic company whose events exercise every rule of the engine."""

from streams.simulate.company import DEFAULT_START_MS, simulate_events
from streams.simulate.pacing import publication_schedule, story_shift_to_end_now

__all__ = ["DEFAULT_START_MS", "publication_schedule", "simulate_events", "story_shift_to_end_now"]
