"""The Faust app (``faust -A streams.app worker``): agents and tables that drive the engine on Kafka."""

from streams.app.worker import app

__all__ = ["app"]
