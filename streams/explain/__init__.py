"""Ask the ledger: one customer's promises and complaints as a timeline (`promise-ledger explain`)."""

from streams.explain.clickhouse_source import read_story
from streams.explain.render import story_renderable
from streams.explain.replay_source import ReplaySource, SourceError, read_events
from streams.explain.story import ComplaintStory, Entry, PromiseStory, Story, build_story

__all__ = [
    "ComplaintStory",
    "Entry",
    "PromiseStory",
    "ReplaySource",
    "SourceError",
    "Story",
    "build_story",
    "read_events",
    "read_story",
    "story_renderable",
]
