"""The evolution gate: each schema is BACKWARD compatible with its previous version, and the gate bites."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.codec import AvroCodec
from streams.codec.compat import BASELINE_ENV, GateUnavailable, check_schemas, ids_problems, main
from tests.codec_helpers import SCHEMAS, evolve_commitment_made

ORDER_SHIPPED = "fulfilment/OrderShipped.avsc"


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=gate", "-c", "user.email=gate@example.invalid", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds a copy of the project's schemas."""
    root = tmp_path / "repo"
    shutil.copytree(SCHEMAS, root / "schemas")
    git(root.parent, "init", "-q", str(root))
    commit_all(root, "schemas v1")
    return root


def edit_schema(repo: Path, relative: str, change: Any) -> None:
    path = repo / "schemas" / relative
    schema = json.loads(path.read_text())
    change(schema["fields"])
    path.write_text(json.dumps(schema, indent=2) + "\n")


def failures(schemas_dir: Path) -> dict[str, tuple[str, ...]]:
    return {
        check.path.relative_to(schemas_dir).as_posix(): check.problems
        for check in check_schemas(schemas_dir)
        if not check.ok
    }


def test_project_schemas_pass_the_gate() -> None:
    checks = check_schemas(SCHEMAS)
    assert [check for check in checks if not check.ok] == []
    assert len(checks) == len(list(SCHEMAS.glob("*/*.avsc"))) + 1  # + ids.json


def test_adding_an_optional_field_passes(repo: Path) -> None:
    edit_schema(
        repo,
        ORDER_SHIPPED,
        lambda f: f.append({"name": "carrier", "type": ["null", "string"], "default": None}),
    )
    checks = {c.path.name: c for c in check_schemas(repo / "schemas")}
    assert checks["OrderShipped.avsc"].ok
    assert checks["OrderShipped.avsc"].baseline is not None and checks[
        "OrderShipped.avsc"
    ].baseline.startswith("commit")


def test_the_documented_evolution_procedure_passes_the_gate(repo: Path) -> None:
    evolve_commitment_made(repo / "schemas")
    checks = {c.path.relative_to(repo / "schemas").as_posix(): c for c in check_schemas(repo / "schemas")}
    assert [c for c in checks.values() if not c.ok] == []
    assert checks["sales/CommitmentMade.avsc"].baseline is not None
    assert checks["ids.json"].baseline is not None
    assert "promise_ledger.sales.CommitmentMade" in AvroCodec(repo / "schemas").schemas


def test_adding_a_field_without_default_fails(repo: Path) -> None:
    edit_schema(repo, ORDER_SHIPPED, lambda f: f.append({"name": "carrier", "type": "string"}))
    found = failures(repo / "schemas")
    assert list(found) == [ORDER_SHIPPED]
    assert "carrier" in found[ORDER_SHIPPED][0]


def test_changing_a_field_type_fails(repo: Path) -> None:
    def string_to_int(fields: list[dict[str, Any]]) -> None:
        next(f for f in fields if f["name"] == "order_id")["type"] = "int"

    edit_schema(repo, ORDER_SHIPPED, string_to_int)
    assert "type_mismatch" in failures(repo / "schemas")[ORDER_SHIPPED][0]


def test_an_incompatible_change_already_committed_still_fails(repo: Path) -> None:
    # CI runs on a clean checkout: the previous version is the commit before the one that changed it.
    edit_schema(repo, ORDER_SHIPPED, lambda f: f.append({"name": "carrier", "type": "string"}))
    commit_all(repo, "break OrderShipped")
    (repo / "schemas" / "README.md").write_text("later, unrelated commit\n")
    commit_all(repo, "docs")
    assert list(failures(repo / "schemas")) == [ORDER_SHIPPED]
    assert main([str(repo / "schemas")]) == 1


def test_compared_with_the_newest_differing_version(repo: Path) -> None:
    carrier = {"name": "carrier", "type": "string", "default": "unknown"}
    edit_schema(repo, ORDER_SHIPPED, lambda f: f.append(carrier))
    commit_all(repo, "v2 adds carrier with a default")
    # v3 drops the default: it can read v2 data (which has carrier) but not v1 data (which has not).
    edit_schema(repo, ORDER_SHIPPED, lambda f: f[-1].pop("default"))
    assert failures(repo / "schemas") == {}
    commit_all(repo, "v3")
    assert failures(repo / "schemas") == {}


def test_renumbering_an_id_fails(repo: Path) -> None:
    ids_path = repo / "schemas" / "ids.json"
    ids = json.loads(ids_path.read_text())
    ids["schemas"]["1"], ids["schemas"]["2"] = ids["schemas"]["2"], ids["schemas"]["1"]
    ids_path.write_text(json.dumps(ids))
    assert "id 1 was promise_ledger.marketing.ClaimPublished" in failures(repo / "schemas")["ids.json"][0]


def test_ids_problems_reports_a_removed_id() -> None:
    old = {"schemas": {"7": {"name": "a.b.C", "file": "b/C.avsc", "fingerprint": "f"}}}
    assert ids_problems(json.dumps({"schemas": {}}), json.dumps(old)) == ("id 7 (a.b.C) was removed",)
    assert ids_problems(json.dumps(old), json.dumps(old)) == ()


def test_gate_refuses_to_run_without_git_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASELINE_ENV, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    exported = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, exported)
    with pytest.raises(GateUnavailable, match="not in a git checkout"):
        check_schemas(exported)
    assert main([str(exported)]) == 2


def test_gate_refuses_to_run_in_a_shallow_clone(repo: Path, tmp_path: Path) -> None:
    (repo / "schemas" / "README.md").write_text("second commit\n")
    commit_all(repo, "second")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(GateUnavailable, match="shallow"):
        check_schemas(shallow / "schemas")


def test_baseline_directory_replaces_git_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    baseline = tmp_path / "baseline"
    current = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, baseline)
    shutil.copytree(SCHEMAS, current)
    monkeypatch.setenv(BASELINE_ENV, str(baseline))
    assert failures(current) == {}
    edit_schema(tmp_path, ORDER_SHIPPED, lambda f: f.append({"name": "carrier", "type": "string"}))
    assert list(failures(current)) == [ORDER_SHIPPED]
