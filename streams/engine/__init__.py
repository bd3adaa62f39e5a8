"""The promise engine (SPEC §4–§5). Pure: no I/O, no clock reads, no randomness."""

from streams.engine.alignment import ALIGNMENT_TYPES, Alert, AlignmentEvent, alert_for, alignment_id
from streams.engine.config import ConfigError, EngineConfig, config_from_mapping, load_config
from streams.engine.engine import CATALOG_KEY, ConflictingDuplicate, PromiseEngine
from streams.engine.ledger import Catalog, CustomerLedger
from streams.engine.trace import TraceRecord

__all__ = [
    "ALIGNMENT_TYPES",
    "CATALOG_KEY",
    "Alert",
    "AlignmentEvent",
    "Catalog",
    "ConfigError",
    "ConflictingDuplicate",
    "CustomerLedger",
    "EngineConfig",
    "PromiseEngine",
    "TraceRecord",
    "alert_for",
    "alignment_id",
    "config_from_mapping",
    "load_config",
]
