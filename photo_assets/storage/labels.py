"""The label log file: the user's edits, appended forever to `<data>/labels/label_log.jsonl`.

Appends are atomic and safe across processes: the file is opened with O_APPEND, locked with `flock`, and each edit
is one `write()` of the whole line followed by `fsync`. A crash mid-append leaves at most a torn last line; the
reader skips it and reports it, and the next append starts on a fresh line. What the edits mean is
photo_assets.analysis.labels.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from photo_assets.analysis.labels import (
    MACHINE_OPS,
    NEWLINE,
    LabelEdit,
    LabelState,
    LogReading,
    Op,
    RejectReason,
    active_edits,
    new_edit,
    parse_log,
    replay,
)


class LabelLog:
    """The label log of one data folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> LogReading:
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return LogReading([], [])
        return parse_log(payload)

    def state(self) -> LabelState:
        return replay(self.read().edits)

    def version(self) -> str:
        """Changes with every edit (for Dagster's data version of the log): the count and the latest edit's id."""
        edits = self.read().edits
        return f"{len(edits)}:{edits[-1].edit_id}" if edits else "empty"

    def _open_locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @staticmethod
    def _write_line(fd: int, line: bytes) -> None:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != NEWLINE:
            line = NEWLINE + line  # close a torn line left by a crash, so this edit parses on its own
        written = os.write(fd, line)
        while written < len(line):  # only on a full disk or a signal; the lock keeps the line whole for readers
            written += os.write(fd, line[written:])
        os.fsync(fd)

    def append(self, op: Op, args: dict[str, Any]) -> LabelEdit:
        edit = new_edit(op, args)
        fd = self._open_locked()
        try:
            self._write_line(fd, edit.to_line())
        finally:
            os.close(fd)  # closing releases the lock
        return edit

    def undo(self) -> LabelEdit | None:
        """Cancel the latest edit still in effect (None when there is nothing to undo). The choice is made under
        the lock, so two simultaneous undos cancel two different edits."""
        fd = self._open_locked()
        try:
            remaining = [edit for edit in active_edits(self.read().edits) if edit.op not in MACHINE_OPS]
            if not remaining:
                return None
            target = remaining[-1]
            edit = new_edit(Op.UNDO, {"edit_id": target.edit_id, "op": str(target.op)})
            self._write_line(fd, edit.to_line())
            return edit
        finally:
            os.close(fd)

    # -- one method per operation, so callers never spell argument names ---------------------------------------

    def rename(self, person_id: str, name: str, face_ids: list[str]) -> LabelEdit:
        return self.append(Op.RENAME, {"person_id": person_id, "name": name, "face_ids": sorted(face_ids)})

    def merge(self, source: str, target: str, face_ids: list[str]) -> LabelEdit:
        return self.append(Op.MERGE, {"source": source, "target": target, "face_ids": sorted(face_ids)})

    def move(self, face_id: str, person_id: str, name: str | None = None) -> LabelEdit:
        args = {"face_id": face_id, "person_id": person_id} | ({"name": name} if name else {})
        return self.append(Op.MOVE, args)

    def reject(self, face_id: str, person_id: str | None, reason: RejectReason) -> LabelEdit:
        if reason is RejectReason.NOT_THIS_PERSON and person_id is None:
            raise ValueError("rejecting a face from a person needs the person")
        return self.append(Op.REJECT, {"face_id": face_id, "person_id": person_id, "reason": str(reason)})

    def not_same(self, person_id: str, other_person_id: str) -> LabelEdit:
        return self.append(Op.NOT_SAME, {"person_id": person_id, "other_person_id": other_person_id})

    def add_face(self, face_id: str, photo_id: str, box: tuple[int, int, int, int], person_id: str | None = None,
                 name: str | None = None) -> LabelEdit:
        x, y, width, height = box
        args = {"face_id": face_id, "photo_id": photo_id, "x": x, "y": y, "width": width, "height": height}
        if person_id:
            args |= {"person_id": person_id} | ({"name": name} if name else {})
        return self.append(Op.ADD_FACE, args)

    def imported(self, face_id: str, source: str, name: str | None, photo_id: str) -> LabelEdit:
        """What a file (source, relative to the library) says face_id is now; no name: it names the face no more."""
        return self.append(Op.IMPORT, {"face_id": face_id, "source": source, "name": name, "photo_id": photo_id})
