"""`crm definitions validate`: check packs, folders of packs, or single files, reporting every problem."""

from __future__ import annotations

from pathlib import Path

from .catalog import load_catalog
from .errors import DefinitionError, Problem
from .loader import display_path, read_document

_KIND_BY_FOLDER = {"entities": "entity", "roles": "role"}


def _enclosing_pack(path: Path) -> Path | None:
    for folder in [path] + list(path.parents):
        if (folder / "pack.json").is_file():
            return folder
    return None


def validate_paths(paths: list[Path], compile_catalog=None) -> tuple[list[Problem], int]:
    """Every problem in the given packs/files (deduplicated, in order), and how many packs were checked.
    ``compile_catalog`` (the engine's ``compile_runtime``) also runs on each pack that loads, so what
    only compiling finds (a sharing rule or rollup condition SQL cannot run) is reported here too."""
    packs: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        path = path.resolve()
        pack = _enclosing_pack(path if path.is_dir() else path.parent)
        if pack is not None:
            packs.append(pack)
        elif path.is_dir():
            found = sorted(p.parent for p in path.glob("*/pack.json"))
            if not found:
                problems.append(Problem(display_path(path), "", "no pack.json here or in any subfolder"))
            packs += found
        else:
            kind = "pack" if path.name == "pack.json" else _KIND_BY_FOLDER.get(path.parent.name)
            if kind is None:
                problems.append(Problem(display_path(path), "", "not inside a pack, and not in an entities/ or roles/ folder"))
            else:
                read_document(path, kind, problems)
    for pack in dict.fromkeys(packs):
        try:
            catalog = load_catalog([str(pack)], extra_paths=[pack.parent])
            if compile_catalog is not None:
                compile_catalog(catalog)
        except DefinitionError as exc:
            problems += exc.problems
    return list(dict.fromkeys(problems)), len(dict.fromkeys(packs))
