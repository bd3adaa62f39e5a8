"""The ClickHouse schema: tables that hold what the pipeline said, and views that dashboards read.

Every statement runs on ClickHouse 18.16 (Debian's server) and on current ClickHouse: no DateTime64,
no TTL, no LowCardinality, no ``CREATE OR REPLACE``. Absent values are stored as ``''`` (strings) so
that sorting keys never need ``Nullable``.

Idempotency is a property of the tables, not of the inserts: a redelivered batch lands twice in a
ReplacingMergeTree keyed by the alignment/alert id, and every view reads with ``FINAL`` so it counts
each id once. (Materialized views would count a redelivered batch twice; see NOTES.md.)
"""

from __future__ import annotations

from typing import Protocol

ALIGNMENT_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS alignment_events (
    alignment_id String,
    type String,
    customer_id String,
    at_ms UInt64,
    at DateTime DEFAULT toDateTime(intDiv(at_ms, 1000)),
    promise_id String,
    department String,
    kind String,
    reason String,
    due_at_ms UInt64,
    ticket_id String,
    root_department String,
    promise_ids Array(String),
    phrases Array(String),
    claim_id String,
    campaign_id String,
    product String,
    rep_name String,
    agent_name String,
    deal_id String,
    order_id String,
    delay_s Int64,
    severity String,
    cause_event_id String,
    inserted_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (customer_id, alignment_id)
"""

ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    dedup_key String,
    group_key String,
    severity String,
    type String,
    customer_id String,
    promise_id String,
    department String,
    kind String,
    reason String,
    at_ms UInt64,
    at DateTime DEFAULT toDateTime(intDiv(at_ms, 1000)),
    due_at_ms UInt64,
    claim_id String,
    product String,
    rep_name String,
    customer_value Float64,
    inserted_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY alert_id
"""

DEAD_LETTERS_DDL = """
CREATE TABLE IF NOT EXISTS dead_letters (
    reason String,
    detail String,
    topic String,
    partition UInt32,
    offset UInt64,
    value_size UInt32,
    dead_lettered_at_ms UInt64,
    dead_lettered_at DateTime DEFAULT toDateTime(intDiv(dead_lettered_at_ms, 1000))
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(dead_lettered_at)
ORDER BY (topic, partition, offset)
"""

# Rows the sink set aside: ClickHouse refused them for good, or they could not be shaped or decoded.
# Keyed by their Kafka record, so a batch replayed after a crash sets each aside once.
SINK_DEAD_LETTERS_DDL = """
CREATE TABLE IF NOT EXISTS sink_dead_letters (
    source_topic String,
    source_partition UInt32,
    source_offset UInt64,
    target_table String,
    reason String,
    error String,
    value_hex String,
    refused_at_ms UInt64,
    refused_at DateTime DEFAULT toDateTime(intDiv(refused_at_ms, 1000))
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(refused_at)
ORDER BY (source_topic, source_partition, source_offset, target_table)
"""

# One row per promise: how it stands now, derived from its alignment events. Its due time is the one its
# latest event carried (an informed amendment can move it earlier): the latest by time, and at one
# instant in the order the engine emits (opened, at risk, ended, fulfilled late), as `explain` reads it.
PROMISE_STATE_VIEW = """
CREATE VIEW IF NOT EXISTS promise_state AS
SELECT
    promise_id,
    any(customer_id) AS customer_id,
    anyIf(department, department != '') AS department,
    anyIf(kind, kind != '') AS kind,
    anyIf(campaign_id, campaign_id != '') AS campaign_id,
    anyIf(rep_name, rep_name != '') AS rep_name,
    minIf(at, type = 'PROMISE_OPENED') AS opened_at,
    argMaxIf(
        due_at_ms,
        at_ms * 4 + multiIf(type = 'PROMISE_OPENED', 0, type = 'AT_RISK', 1, type = 'FULFILLED_LATE', 3, 2),
        due_at_ms != 0) AS due_at_ms,
    multiIf(
        countIf(type = 'PROMISE_BROKEN') > 0, 'BROKEN',
        countIf(type = 'PROMISE_KEPT') > 0, 'KEPT',
        countIf(type = 'AT_RISK') > 0, 'AT_RISK',
        'OPEN') AS status,
    anyIf(reason, type = 'PROMISE_BROKEN') AS broken_reason,
    groupUniqArrayIf(reason, type = 'AT_RISK') AS risk_reasons,
    maxIf(at, type IN ('PROMISE_KEPT', 'PROMISE_BROKEN')) AS ended_at,
    maxIf(delay_s, type = 'FULFILLED_LATE') AS late_by_s
FROM alignment_events FINAL
WHERE promise_id != ''
  AND type IN ('PROMISE_OPENED', 'PROMISE_KEPT', 'PROMISE_BROKEN', 'AT_RISK', 'FULFILLED_LATE')
GROUP BY promise_id
"""

# The shared scorecard at its finest grain; scorecard_daily rolls it up per day and department. A promise
# at risk counts once, on the day of its first AT_RISK (SPEC §6), whatever reasons and days followed.
SCORECARD_DRILLDOWN_VIEW = """
CREATE VIEW IF NOT EXISTS scorecard_drilldown AS
SELECT
    day, department, campaign_id, rep_name, agent_name,
    sum(made_n) AS made,
    sum(kept_n) AS kept,
    sum(broken_n) AS broken,
    sum(at_risk_n) AS at_risk,
    sum(complaints_n) AS complaints_caused,
    sum(tone_n) AS tone_issues,
    sum(style_n) AS style_mismatches,
    sum(recovered_n) AS recovered
FROM
(
    SELECT
        toDate(at) AS day, department, campaign_id, rep_name, agent_name,
        countIf(type = 'PROMISE_OPENED') AS made_n,
        countIf(type = 'PROMISE_KEPT') AS kept_n,
        countIf(type = 'PROMISE_BROKEN') AS broken_n,
        toUInt64(0) AS at_risk_n,
        toUInt64(0) AS complaints_n,
        countIf(type = 'TONE') AS tone_n,
        countIf(type = 'STYLE_MISMATCH') AS style_n,
        countIf(type = 'RECOVERED') AS recovered_n
    FROM alignment_events FINAL
    WHERE department != ''
    GROUP BY day, department, campaign_id, rep_name, agent_name
    UNION ALL
    SELECT
        toDate(at) AS day, root_department AS department, campaign_id, rep_name, agent_name,
        toUInt64(0) AS made_n, toUInt64(0) AS kept_n, toUInt64(0) AS broken_n, toUInt64(0) AS at_risk_n,
        count() AS complaints_n,
        toUInt64(0) AS tone_n, toUInt64(0) AS style_n, toUInt64(0) AS recovered_n
    FROM alignment_events FINAL
    WHERE type = 'COMPLAINT_ATTRIBUTED'
    GROUP BY day, department, campaign_id, rep_name, agent_name
    UNION ALL
    SELECT
        toDate(first_at) AS day, first_department AS department, first_campaign_id AS campaign_id,
        first_rep_name AS rep_name, first_agent_name AS agent_name,
        toUInt64(0) AS made_n, toUInt64(0) AS kept_n, toUInt64(0) AS broken_n,
        count() AS at_risk_n,
        toUInt64(0) AS complaints_n, toUInt64(0) AS tone_n, toUInt64(0) AS style_n, toUInt64(0) AS recovered_n
    FROM
    (
        -- distinct names: an alias equal to a column name would replace the column in WHERE
        SELECT
            min(at) AS first_at,
            argMin(department, at_ms) AS first_department,
            argMin(campaign_id, at_ms) AS first_campaign_id,
            argMin(rep_name, at_ms) AS first_rep_name,
            argMin(agent_name, at_ms) AS first_agent_name
        FROM alignment_events FINAL
        WHERE type = 'AT_RISK' AND department != '' AND promise_id != ''
        GROUP BY customer_id, promise_id
    )
    GROUP BY day, department, campaign_id, rep_name, agent_name
)
GROUP BY day, department, campaign_id, rep_name, agent_name
"""

SCORECARD_DAILY_VIEW = """
CREATE VIEW IF NOT EXISTS scorecard_daily AS
SELECT
    day, department,
    made_sum AS made,
    kept_sum AS kept,
    broken_sum AS broken,
    if(kept_sum + broken_sum = 0, 0, round(kept_sum / (kept_sum + broken_sum), 4)) AS kept_rate,
    at_risk_sum AS at_risk,
    complaints_sum AS complaints_caused,
    tone_sum AS tone_issues,
    style_sum AS style_mismatches,
    recovered_sum AS recovered
FROM
(
    SELECT
        day, department,
        sum(made) AS made_sum, sum(kept) AS kept_sum, sum(broken) AS broken_sum,
        sum(at_risk) AS at_risk_sum, sum(complaints_caused) AS complaints_sum,
        sum(tone_issues) AS tone_sum, sum(style_mismatches) AS style_sum, sum(recovered) AS recovered_sum
    FROM scorecard_drilldown
    GROUP BY day, department
)
"""

MIGRATIONS: tuple[str, ...] = (
    ALIGNMENT_EVENTS_DDL,
    ALERTS_DDL,
    DEAD_LETTERS_DDL,
    SINK_DEAD_LETTERS_DDL,
    PROMISE_STATE_VIEW,
    SCORECARD_DRILLDOWN_VIEW,
    SCORECARD_DAILY_VIEW,
)


class QueryRunner(Protocol):
    def execute(self, query: str, params: object = None) -> object: ...


#: Views hold no data: each start replaces them, so a database made by an earlier version reads
#: with today's definitions (CREATE OR REPLACE VIEW is not in ClickHouse 18.16).
VIEWS: tuple[tuple[str, str], ...] = (
    ("promise_state", PROMISE_STATE_VIEW),
    ("scorecard_drilldown", SCORECARD_DRILLDOWN_VIEW),
    ("scorecard_daily", SCORECARD_DAILY_VIEW),
)


def apply_schema(client: QueryRunner) -> None:
    """Create every table that is missing and every view as defined today; safe at every start."""
    views = {definition for _, definition in VIEWS}
    for statement in MIGRATIONS:
        if statement not in views:
            client.execute(statement)
    for name, _ in reversed(VIEWS):  # scorecard_daily reads scorecard_drilldown: dropped first
        client.execute(f"DROP TABLE IF EXISTS {name}")
    for _, definition in VIEWS:
        client.execute(definition)
