"""The pure core stays pure: metadata and engine never import the web stack or the task queue."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "crm_platform"
FORBIDDEN = {"flask", "werkzeug", "celery", "redis"}


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module imported anywhere in ``path`` (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def imports_of(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        found[str(relative)] = imported_modules(path, ".".join(relative.parts[:-1]))
    return found


def test_imported_modules_resolves_relative_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from . import a\nfrom ..engine import runtime\nimport flask.json\nfrom x.y import z\n")
    names = imported_modules(source, "crm_platform.metadata")
    assert {"crm_platform.metadata.a", "crm_platform.engine", "crm_platform.engine.runtime", "flask.json",
            "x.y", "x.y.z"} <= names


@pytest.mark.parametrize("folder", ["metadata", "engine"])
def test_core_folder_never_imports_web_or_queue_statically(folder):
    files = imports_of(folder)
    assert len(files) >= 5
    offenders = {file: sorted(n for n in names if n.split(".")[0] in FORBIDDEN) for file, names in files.items()}
    assert {file: names for file, names in offenders.items() if names} == {}


def test_metadata_imports_nothing_of_engine_web_or_workflow():
    layers = ("crm_platform.engine", "crm_platform.web", "crm_platform.workflow", "crm_platform.installation",
              "crm_platform.cli")
    offenders = {file: sorted(n for n in names if n.startswith(layers))
                 for file, names in imports_of("metadata").items()}
    assert {file: names for file, names in offenders.items() if names} == {}


def test_metadata_never_imports_sqlalchemy_as_its_readme_promises():
    offenders = {file: sorted(n for n in names if n.split(".")[0] in ("sqlalchemy", "alembic"))
                 for file, names in imports_of("metadata").items()}
    assert {file: names for file, names in offenders.items() if names} == {}


def loaded_after_import(module: str, roots: set[str]) -> list[str]:
    code = (f"import {module}, sys; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(roots)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent, timeout=60)
    return result.stdout.strip()


@pytest.mark.parametrize("module", ["crm_platform.metadata", "crm_platform.engine"])
def test_importing_the_core_loads_no_web_or_queue_module(module):
    assert loaded_after_import(module, FORBIDDEN) == "[]"


def test_importing_metadata_loads_no_engine_or_sqlalchemy():
    code = ("import crm_platform.metadata, sys; print(sorted(m for m in sys.modules "
            "if m.startswith(('crm_platform.engine', 'crm_platform.web', 'crm_platform.workflow', 'sqlalchemy'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_subprocess_check_can_see_a_forbidden_import():
    """Guard against a check that cannot fail: importing the web app does load flask."""
    assert "flask" in loaded_after_import("crm_platform.web", FORBIDDEN)
