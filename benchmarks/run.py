"""Every performance figure of the product, measured the same way each time, in one command.

Usage (stack up, `eval "$(deploy/local/stack env)"`):
    PYTHONPATH=. python benchmarks/run.py            # full sizes: minutes; writes benchmarks/results.md
    PYTHONPATH=. python benchmarks/run.py --short    # small sizes, for CI: checks every figure appears

Each benchmark is its own script (replay.py, codec.py, worker.py, sink.py, alert_latency.py) and prints
its own figures; this runner runs them, collects the figures into one table, prints it and writes it,
with the date and the machine, to benchmarks/results.md (full runs only, unless --write).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Figure:
    name: str
    pattern: str  # regex with one group: the figure as the script printed it
    goal: str = ""


@dataclass(frozen=True)
class Benchmark:
    script: str
    full: tuple[str, ...]
    short: tuple[str, ...]
    figures: tuple[Figure, ...]


ONE_WORKER = "worker, 1 process (events/s)"
TWO_WORKERS = "worker, 2 processes (events/s)"

BENCHMARKS = (
    Benchmark(
        "replay.py",
        ("--events", "1000000"),
        ("--events", "20000", "--promises", "2000"),
        (
            Figure("replay throughput (events/s, one process)", r"= ([\d,]+) events/s", ">= 150,000"),
            Figure("replay: the engine alone (µs/event)", r"engine ([\d.]+) us"),
            Figure("replay without the engine, at most (events/s)", r"at most ([\d,]+) events/s"),
            Figure("replay peak RSS (MiB)", r"peak RSS: ([\d,]+) MiB"),
            Figure("memory per open promise (bytes)", r"DELIVERY promises\): ([\d,]+) B", "<= 1,024"),
        ),
    ),
    Benchmark(
        "codec.py",
        ("20000",),
        ("2000",),
        (Figure("Avro decode (records/s)", r"decode[^\n]*?([\d,]+) records/s"),),
    ),
    Benchmark(
        "worker.py",
        ("--events", "60000"),
        ("--events", "3000", "--deadline", "120"),
        (
            Figure("raw consume + decode (records/s)", r"raw consume \+ decode\s+([\d,]+)"),
            Figure(ONE_WORKER, r"worker x1[^\d]+([\d,]+)", ">= 20,000"),
            Figure("worker / raw ratio", r"ratio worker / raw\s+([\d.]+)", ">= 0.6"),
            Figure("Faust stream alone, no-op agent (records/s)", r"faust stream alone\s+([\d,]+)"),
        ),
    ),
    Benchmark(
        "worker.py",
        ("--events", "60000", "--workers", "2", "--deadline", "600"),
        ("--events", "3000", "--workers", "2", "--deadline", "120"),
        (Figure(TWO_WORKERS, r"worker x2[^\d]+([\d,]+)", ">= 1.6 x one worker"),),
    ),
    Benchmark(
        "sink.py",
        ("--rows", "100000"),
        ("--rows", "5000"),
        (
            Figure("raw ClickHouse insert (rows/s)", r"raw clickhouse-driver insert\s+([\d,]+)"),
            Figure("sink (rows/s)", r"sink \(consume, decode, insert\)\s*([\d,]+)"),
            Figure("sink / raw ratio", r"ratio sink / raw\s+([\d.]+)", ">= 0.5"),
            Figure("ratio if only fastavro decode + raw insert", r"ceiling: decode \+ raw insert\s+([\d.]+)"),
        ),
    ),
    Benchmark(
        "alert_latency.py",
        ("--promises", "20"),
        ("--promises", "3", "--spacing-s", "2"),
        (
            Figure(
                "due+grace -> alerts topic p50 / p99 (s)", r"alerts topic\s+p50\s+([\d.]+ s\s+p99\s+[\d.]+) s"
            ),
            Figure("due+grace -> Slack p50 / p99 (s)", r"Slack\s+p50\s+([\d.]+ s\s+p99\s+[\d.]+) s"),
        ),
    ),
)


def run(benchmark: Benchmark, short: bool) -> dict[str, str]:
    arguments = benchmark.short if short else benchmark.full
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(HERE / benchmark.script), *arguments],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = {}
    for figure in benchmark.figures:
        match = re.search(figure.pattern, done.stdout)
        found[figure.name] = re.sub(r"\s+", " ", match.group(1)) if match else "not measured"
    if done.returncode:
        print(f"{benchmark.script} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}", file=sys.stderr)
    return found


def _scaling(values: dict[str, str]) -> tuple[str, str, str]:
    """Two workers' rate over one's, from the two figures of the same run."""
    name = "2 workers / 1 worker"
    try:
        ratio = float(values[TWO_WORKERS].replace(",", "")) / float(values[ONE_WORKER].replace(",", ""))
    except (KeyError, ValueError, ZeroDivisionError):
        return name, "not measured", ">= 1.6"
    return name, f"{ratio:.2f}", ">= 1.6"


def machine() -> str:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    python = platform.python_version()
    gib = memory_kib / 1024 / 1024
    return f"{os.cpu_count()} cores, {gib:.0f} GiB, {platform.platform()}, Python {python}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--short", action="store_true", help="small sizes (CI): only checks every figure appears"
    )
    parser.add_argument("--write", action="store_true", help="write results.md even for a --short run")
    options = parser.parse_args()
    started = time.monotonic()
    rows: list[tuple[str, str, str]] = []
    for benchmark in BENCHMARKS:
        figures = run(benchmark, options.short)
        rows += [(figure.name, figures[figure.name], figure.goal) for figure in benchmark.figures]
        print(f"{benchmark.script} {' '.join(benchmark.short if options.short else benchmark.full)}: done")
    after_two_workers = next(n for n, (name, _, _) in enumerate(rows) if name == TWO_WORKERS) + 1
    rows.insert(after_two_workers, _scaling({name: value for name, value, _ in rows}))
    width = max(len(name) for name, _, _ in rows)
    print()
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>20}  {('goal ' + goal) if goal else ''}")
    table = "\n".join(f"| {name} | {value} | {goal} |" for name, value, goal in rows)
    report = (
        f"# Benchmark results\n\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, "
        f"{'short' if options.short else 'full'} sizes, in {time.monotonic() - started:.0f} s, with\n"
        f"`PYTHONPATH=. python benchmarks/run.py{' --short' if options.short else ''}`.\n\n"
        f"| figure | measured | goal |\n|---|---|---|\n{table}\n"
    )
    if not options.short or options.write:
        (HERE / "results.md").write_text(report, encoding="utf-8")
    missing = [name for name, value, _ in rows if value == "not measured"]
    if missing:
        print(f"not measured: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
