"""Finding packs and reading their files: JSON parsing and schema validation, every problem collected."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import Problem
from .schemas import iter_problems

#: Key under which each raw definition dict remembers where it came from: (file, pointer).
ORIGIN = "__origin__"


@dataclass
class RawPack:
    """A pack as read from disk: its manifest and its schema-valid documents."""

    name: str
    path: Path
    manifest: dict
    entities: list[tuple[str, dict]] = field(default_factory=list)  # (file, document)
    roles: list[tuple[str, dict]] = field(default_factory=list)
    #: Names of documents that failed schema validation: other files may still refer to them, and
    #: must not get a cascade of "unknown entity" problems for it.
    broken: set[str] = field(default_factory=set)


def builtin_definitions() -> Path:
    """The definitions shipped with the platform (inside the wheel, or the source checkout)."""
    packaged = resources.files("crm_platform").joinpath("_data/definitions")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "definitions"


def search_paths(extra: list[Path] | None = None) -> list[Path]:
    paths = list(extra or [])
    paths += [Path(p) for p in os.environ.get("CRM_PACKS_PATH", "").split(os.pathsep) if p]
    paths.append(builtin_definitions())
    return paths


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def find_pack(ref: str, paths: list[Path]) -> Path | None:
    """A pack by name (looked up in ``paths``) or by folder path."""
    candidate = Path(ref)
    if (candidate / "pack.json").is_file():
        return candidate
    for root in paths:
        if (root / ref / "pack.json").is_file():
            return root / ref
    return None


def read_json(path: Path, problems: list[Problem]):
    where = display_path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        problems.append(Problem(where, "", f"cannot read file: {exc.strerror}"))
        return None
    except UnicodeDecodeError:
        problems.append(Problem(where, "", "file is not UTF-8 text"))
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(where, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"))
        return None


def read_document(path: Path, kind: str, problems: list[Problem], broken: set[str] | None = None) -> dict | None:
    """Parse and schema-validate one definition file; None (and problems) if it is not valid.
    The name of a document that parsed but failed validation is added to ``broken``."""
    document = read_json(path, problems)
    if document is None:
        return None
    where = display_path(path)
    found = [Problem(where, ptr, msg) for ptr, msg in iter_problems(kind, document)]
    problems.extend(found)
    if found and broken is not None and isinstance(document, dict) and isinstance(document.get("name"), str):
        broken.add(document["name"])
    return None if found else document


def read_pack(folder: Path, problems: list[Problem]) -> RawPack | None:
    manifest = read_document(folder / "pack.json", "pack", problems)
    if manifest is None:
        return None
    pack = RawPack(manifest["name"], folder, manifest)
    for kind, folder_name, target in (("entity", "entities", pack.entities), ("role", "roles", pack.roles)):
        for path in sorted((folder / folder_name).glob("*.json")):
            document = read_document(path, kind, problems, pack.broken)
            if document is not None:
                target.append((display_path(path), document))
    return pack


def resolve_packs(refs: list[str], paths: list[Path], problems: list[Problem]) -> list[RawPack]:
    """Read the named packs and everything they extend or require, dependencies first."""
    ordered: list[RawPack] = []
    seen: dict[str, RawPack | None] = {}
    visiting: list[str] = []

    def visit(ref: str, needed_by: RawPack | None) -> None:
        folder = find_pack(ref, paths)
        if folder is None:
            where = display_path(needed_by.path / "pack.json") if needed_by else "CRM_PACKS"
            looked = ([needed_by.path.parent] if needed_by else []) + paths
            problems.append(Problem(where, "/extends" if needed_by else "", f"pack '{ref}' not found "
                                    f"(looked in {', '.join(dict.fromkeys(display_path(p) for p in looked))})"))
            return
        key = str(folder.resolve())
        if key in visiting:
            cycle = [Path(k).name for k in visiting[visiting.index(key):] + [key]]
            problems.append(Problem(display_path(folder / "pack.json"), "/extends",
                                    f"packs depend on each other in a cycle: {' → '.join(cycle)}"))
            return
        if key in seen:
            return
        visiting.append(key)
        pack = read_pack(folder, problems)
        seen[key] = pack
        if pack is not None:
            sibling_paths = [folder.parent] + paths
            for dep in pack.manifest.get("extends", []) + pack.manifest.get("requires", []):
                nested = find_pack(dep, sibling_paths)
                visit(str(nested) if nested else dep, pack)
            ordered.append(pack)
        visiting.pop()

    for ref in refs:
        visit(ref, None)
    names = [p.name for p in ordered]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(Problem("CRM_PACKS", "", f"two different packs are named '{name}'"))
    return ordered
