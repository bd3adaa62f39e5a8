"""Promise Ledger: what the company promised each customer, and whether it happened.

Packages, one concept each:

- ``streams.contract``  the input events of SPEC §3 as typed records, and their JSON-lines form (pure)
- ``streams.engine``    the promise engine: rules of SPEC §4-§5, pure and deterministic
- ``streams.codec``     Avro schemas from ``schemas/``, Confluent wire framing
- ``streams.app``       the Faust app: agents and tables that drive the engine on Kafka
- ``streams.sink``      alignment events and alerts into ClickHouse
- ``streams.slack``     broken-promise alerts to Slack incoming webhooks
- ``streams.simulate``  a synthetic company that makes and breaks promises
- ``streams.cli``       the ``promise-ledger`` command
"""

__version__ = "0.1.0"
