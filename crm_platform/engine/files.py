"""Uploaded files, stored in the database (so any number of web processes can serve them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from .accounts import Actor
from .database import new_id, utcnow
from .errors import BadRequest, NotFound
from .messages import Message

MAX_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    name: str
    content_type: str
    size: int
    sha256: str

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "content_type": self.content_type, "size": self.size,
                "sha256": self.sha256}


def file_visible(runtime, conn: sa.Connection, access, file_id: str) -> bool:
    """Whether the caller may see a file: they uploaded it, or they can read a record whose file
    field (visible to them) holds it. Everyone else is told it does not exist."""
    files = runtime.tables["files"]
    row = conn.execute(sa.select(files.c.created_by).where(files.c.id == file_id)).first()
    if row is None:
        return False
    if access.actor is None or row.created_by == access.actor.id:
        return True
    for er in runtime.entities.values():
        hidden = access.policy(er).hidden
        for f in er.entity.fields:
            if f.type == "file" and f.name not in hidden:
                query = sa.select(er.table.c.id).where(er.table.c[f.name] == file_id, access.clause(er, "read"))
                if conn.scalar(query.limit(1)) is not None:
                    return True
    return False


class FileStore:
    def __init__(self, db: sa.Engine, table: sa.Table):
        self.db, self.table = db, table

    def save(self, name: str, content_type: str, data: bytes, actor: Actor | None) -> StoredFile:
        if not data:
            raise BadRequest("bad_payload", detail=Message("file_empty"))
        if len(data) > MAX_SIZE:
            raise BadRequest("bad_payload", detail=Message("file_too_large", {"max": MAX_SIZE // (1024 * 1024)}))
        stored = StoredFile(new_id(), (name or "file")[:255], (content_type or "application/octet-stream")[:127],
                            len(data), hashlib.sha256(data).hexdigest())
        with self.db.begin() as conn:
            conn.execute(self.table.insert().values(
                id=stored.id, name=stored.name, content_type=stored.content_type, size=stored.size,
                sha256=stored.sha256, data=data, created_at=utcnow(), created_by=actor.id if actor else None))
        return stored

    def load(self, file_id: str, runtime=None, access=None) -> tuple[StoredFile, bytes]:
        """The file, if ``access`` may see it (see :func:`file_visible`); 404 otherwise."""
        t = self.table
        with self.db.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == file_id)).first()
            if row is not None and access is not None and not file_visible(runtime, conn, access, file_id):
                row = None
        if row is None:
            raise NotFound("not_found", entity="file", id=file_id)
        return StoredFile(row.id, row.name, row.content_type, row.size, row.sha256), row.data
