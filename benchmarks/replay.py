"""Replay throughput, peak RSS, and memory per open promise of the promise engine.

Usage: PYTHONPATH=. python benchmarks/replay.py [--events 1000000] [--promises 20000]

1. Generates ``--events`` simulated events to a temporary JSON-lines file (not timed).
2. Times ``promise-ledger replay FILE --until ...`` in a child process, output to /dev/null: JSON
   parsing, validation, the engine and output serialisation all count. Prints events/s and the
   child's peak RSS.
3. Splits the same work by stage, in this process, over the first ``--split`` events: parsing and
   validating the lines, the engine alone, and writing the outputs as JSON. Prints each stage's cost
   per event: parsing plus writing bound what replay can reach however fast the engine gets.
4. Opens ``--promises`` DELIVERY promises (the largest kind) on customers that already exist and
   measures, with tracemalloc, what the engine's state grew by per open promise.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import orjson

from streams.cli.replay import collect_garbage_rarely
from streams.contract import decoded_to_json_line, event_from_json_line, ms_to_iso
from streams.engine import PromiseEngine
from streams.simulate import DEFAULT_START_MS, simulate_events

#: the simulator makes about 1.3 events per customer per day; a few more customers, then cut at --events
EVENTS_PER_CUSTOMER_DAY = 1.2
DAYS = 30
DAY_MS = 86_400_000


def generate(path: str, events: int) -> int:
    customers = max(1, int(events / (EVENTS_PER_CUSTOMER_DAY * DAYS)))
    written = 0
    with open(path, "wb") as handle:
        stream = simulate_events(customers=customers, days=DAYS, seed=7, start_ms=DEFAULT_START_MS)
        for decoded in itertools.islice(stream, events):
            handle.write(decoded_to_json_line(decoded) + b"\n")
            written += 1
    return written


def time_replay(path: str) -> tuple[float, int, int]:
    until = ms_to_iso(DEFAULT_START_MS + (DAYS + 30) * DAY_MS)
    command = [sys.executable, "-m", "streams.cli.main", "replay", path, "--until", until]
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        result = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"replay failed ({result.returncode}): {result.stderr.decode()[:500]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, peak_kib, result.returncode


def stage_costs(path: str, events: int) -> tuple[float, float, float]:
    """Microseconds per event of (parsing + validation, the engine, JSON output) over ``events``,
    with the collector set as replay sets it."""
    with open(path, "rb") as handle:
        lines = list(itertools.islice(handle, events))
    threshold = gc.get_threshold()
    collect_garbage_rarely()
    try:
        started = time.perf_counter()
        parsed = [event_from_json_line(line) for line in lines]
        parsing = time.perf_counter() - started
        engine = PromiseEngine()
        started = time.perf_counter()
        outputs = [alignment for event in parsed for alignment in engine.process(event)]
        processing = time.perf_counter() - started
        started = time.perf_counter()
        for alignment in outputs:
            orjson.dumps(alignment)
        writing = time.perf_counter() - started
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    per_event_us = 1e6 / len(lines)
    return parsing * per_event_us, processing * per_event_us, writing * per_event_us


def _line(type_name: str, fields: str, number: int, customer: int, day: int = 0) -> bytes:
    at = ms_to_iso(DEFAULT_START_MS + day * DAY_MS + number)
    return (
        f'{{"type":"{type_name}","event_id":"bench-{type_name}-{number:08d}","customer_id":"cust-{customer:06d}",'
        f'"occurred_at":"{at}","source":"bench",{fields}}}'
    ).encode()


def memory_per_open_promise(promises: int) -> tuple[float, float]:
    """Bytes per open promise: (engine state growth incl. the dedupe entry of its event, without it)."""
    customers = max(1, promises // 4)
    engine = PromiseEngine()
    for customer in range(customers):
        engine.process(
            event_from_json_line(_line("CustomerExposed", '"claim_id":"none"', customer, customer))
        )
    due = ms_to_iso(DEFAULT_START_MS + 60 * DAY_MS)
    events = [
        event_from_json_line(
            _line(
                "CommitmentMade",
                f'"commitment_id":"commit-{number:08d}","deal_id":"deal-{number:08d}","rep_name":"Ana Ruiz",'
                f'"product":"widget","quantity":20,"deliver_by":"{due}","unit_price":49.0,'
                f'"features":["SSO","API"]',
                number,
                number % customers,
            )
        )
        for number in range(promises)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for event in events:
        engine.process(event)
    grown = tracemalloc.get_traced_memory()[0] - before
    # What the dedupe window keeps for these events: a dict slot and the id (shared with the event).
    seen = sum(len(ledger.seen) for ledger in engine.ledgers.values()) - customers
    tracemalloc.stop()
    del events
    per_seen_entry = 8 * 3 + 32  # dict slot (hash, key, value) plus the int timestamp
    return grown / promises, (grown - seen * per_seen_entry) / promises


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--promises", type=int, default=20_000)
    parser.add_argument("--split", type=int, default=200_000, help="events timed stage by stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "events.jsonl")
        started = time.perf_counter()
        events = generate(path, args.events)
        size_mb = os.path.getsize(path) / 1e6
        print(f"generated {events:,} events ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s")
        elapsed, peak_kib, _ = time_replay(path)
        parsing, processing, writing = stage_costs(path, min(args.split, events))
    print(f"replay: {events:,} events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s (one process)")
    print(f"replay peak RSS: {peak_kib / 1024:.0f} MiB")
    print(
        f"replay stages per event: parse+validate {parsing:.1f} us, engine {processing:.1f} us, "
        f"JSON output {writing:.1f} us; without the engine at most {1e6 / (parsing + writing):,.0f} events/s"
    )
    with_dedupe, without_dedupe = memory_per_open_promise(args.promises)
    print(
        f"memory per open promise ({args.promises:,} DELIVERY promises): {with_dedupe:,.0f} B "
        f"({without_dedupe:,.0f} B without the dedupe-window entry of the event that made it)"
    )


if __name__ == "__main__":
    main()
