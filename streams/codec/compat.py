"""The schema-evolution gate: every schema must be BACKWARD compatible with its previous version.

BACKWARD (Confluent's default): a consumer on the new schema reads records written with the old one,
so consumers upgrade first. The previous version of `schemas/<department>/<Type>.avsc` is its content
at the newest commit where it differs from the working tree; a file with no such commit is new and has
nothing to be compatible with. Without git history (not a checkout, or a shallow clone) the gate
refuses to run instead of passing vacuously, unless `$PL_SCHEMA_BASELINE` names a directory laid out
like `schemas/` that holds the previous versions.

Run it: `python -m streams.codec.compat [SCHEMAS_DIR]` (exit status 1 on any incompatibility).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from streams.codec.registry import IDS_FILE
from streams.codec.schemas import default_schemas_dir, layout_files

BASELINE_ENV = "PL_SCHEMA_BASELINE"


class GateUnavailable(RuntimeError):
    """The gate cannot find previous versions to compare with; treat as a failure, never a pass."""


@dataclass(frozen=True)
class SchemaCheck:
    path: Path
    baseline: str | None  # where the previous version came from; None for a new schema
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def backward_problems(new_schema: str, old_schema: str) -> tuple[str, ...]:
    """Why a reader on `new_schema` cannot read data written with `old_schema`; empty if it can."""
    try:
        reader = avro.schema.parse(new_schema)
        writer = avro.schema.parse(old_schema)
    except (avro.errors.SchemaParseException, ValueError) as exc:
        return (f"does not parse: {exc}",)
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return ()
    # avro keeps messages and locations as unordered sets; sort them so the report is stable.
    kinds = ", ".join(sorted({incompatibility.name for incompatibility in result.incompatibilities}))
    locations = ", ".join(sorted(location for location in result.locations if location != "/")) or "/"
    return (f"{kinds} at {locations}: {'; '.join(sorted(result.messages))}",)


class _GitHistory:
    def __init__(self, directory: Path) -> None:
        try:
            top = self._git(directory, "rev-parse", "--show-toplevel").strip()
            shallow = self._git(directory, "rev-parse", "--is-shallow-repository").strip()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise GateUnavailable(
                f"{directory} is not in a git checkout, so previous schema versions are unknown; "
                f"run the gate in a full clone or set {BASELINE_ENV} to a directory of baseline schemas"
            ) from exc
        if shallow == "true":
            raise GateUnavailable(
                f"{top} is a shallow clone, so previous schema versions may be missing; "
                f"fetch full history (git fetch --unshallow) or set {BASELINE_ENV}"
            )
        self.top = Path(top)

    @staticmethod
    def _git(directory: Path, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(directory), *args], check=True, capture_output=True, text=True
        ).stdout

    def previous_version(self, path: Path) -> tuple[str, str] | None:
        """(commit, text) of the newest committed version of `path` that differs from the file now."""
        relative = path.resolve().relative_to(self.top.resolve()).as_posix()
        current = path.read_text(encoding="utf-8")
        for commit in self._git(self.top, "log", "--format=%H", "--", relative).split():
            shown = subprocess.run(
                ["git", "-C", str(self.top), "show", f"{commit}:{relative}"], capture_output=True, text=True
            )
            if shown.returncode != 0:  # the commit deleted the file
                continue
            if shown.stdout != current:
                return commit, shown.stdout
        return None


def gated_files(schemas_dir: Path) -> list[Path]:
    """The current version of every schema, and the ids file."""
    ids_file = schemas_dir / IDS_FILE
    return [*layout_files(schemas_dir), *([ids_file] if ids_file.exists() else [])]


def previous_versions(schemas_dir: Path, baseline_dir: Path | None) -> dict[Path, tuple[str, str]]:
    """For each file to gate: (where it came from, previous text); new files are absent."""
    files = gated_files(schemas_dir)
    found: dict[Path, tuple[str, str]] = {}
    if baseline_dir is not None:
        for path in files:
            baseline = baseline_dir / path.relative_to(schemas_dir)
            if baseline.exists():
                found[path] = (f"baseline {baseline}", baseline.read_text(encoding="utf-8"))
        return found
    history = _GitHistory(schemas_dir)
    for path in files:
        previous = history.previous_version(path)
        if previous is not None:
            found[path] = (f"commit {previous[0][:12]}", previous[1])
    return found


def ids_problems(new_ids: str, old_ids: str) -> tuple[str, ...]:
    """Ids are never reused or renumbered: every old id keeps its name and wire form."""
    new = json.loads(new_ids)["schemas"]
    problems = []
    for schema_id, old_entry in json.loads(old_ids)["schemas"].items():
        entry = new.get(schema_id)
        if entry is None:
            problems.append(f"id {schema_id} ({old_entry['name']}) was removed")
        elif (entry["name"], entry["fingerprint"]) != (old_entry["name"], old_entry["fingerprint"]):
            problems.append(
                f"id {schema_id} was {old_entry['name']} {old_entry['fingerprint']}, "
                f"now {entry['name']} {entry['fingerprint']}"
            )
    return tuple(problems)


def check_schemas(schemas_dir: Path, baseline_dir: Path | None = None) -> list[SchemaCheck]:
    """Check every schema (and the ids file) against its previous version; raises `GateUnavailable`."""
    if baseline_dir is None and os.environ.get(BASELINE_ENV):
        baseline_dir = Path(os.environ[BASELINE_ENV])
    previous = previous_versions(schemas_dir, baseline_dir)
    checks = []
    for path in gated_files(schemas_dir):
        if path not in previous:
            checks.append(SchemaCheck(path, None, ()))
            continue
        origin, old_text = previous[path]
        new_text = path.read_text(encoding="utf-8")
        compare = ids_problems if path.name == IDS_FILE else backward_problems
        checks.append(SchemaCheck(path, origin, compare(new_text, old_text)))
    return checks


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    schemas_dir = Path(args[0]) if args else default_schemas_dir()
    try:
        checks = check_schemas(schemas_dir)
    except GateUnavailable as exc:
        print(f"schema gate cannot run: {exc}", file=sys.stderr)
        return 2
    for check in checks:
        status = "ok" if check.ok else "INCOMPATIBLE"
        print(f"{status:12} {check.path.relative_to(schemas_dir)}  ({check.baseline or 'new'})")
        for problem in check.problems:
            print(f"             {problem}")
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
