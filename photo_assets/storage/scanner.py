"""The library scanner: which files exist, which are new, changed or gone, and which ingest batch each belongs to.

State lives in the data folder's scanner database (one row per file) and in one manifest per batch
(photo_assets.storage.manifests), so that what a batch contains is recorded and re-materialising it is
reproducible. A walk of a large library is resumable: `scan` takes and returns a `ScanCursor`, stopping after a
time budget, so a sensor can spread a first scan of 100k files over several ticks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from photo_assets.analysis.catalog import encode_path
from photo_assets.storage.layout import XMP_SUFFIX, DataLayout
from photo_assets.storage.manifests import ManifestEntry, write_manifest

# Batches of at most this many files: few enough partitions for 100k photos (200), small enough to finish in minutes.
DEFAULT_BATCH_SIZE = 500
# A trickle import waits this long for company before it becomes a batch of its own.
DEFAULT_MAX_WAIT_SECONDS = 10 * 60
# Dot-files are OS and tool droppings (.DS_Store, .thumbnails), never the user's photos.
HIDDEN_PREFIX = "."
# Sidecars (digiKam's IMG_1.jpg.xmp, Lightroom's IMG_1.xmp, ours when written beside the photos) describe photos and
# are read with them (added_faces); catalogued as photos they would be errors, and ours would come back as new files.
SIDECAR_SUFFIXES = (XMP_SUFFIX,)


@dataclass
class ScanCursor:
    """Where an interrupted walk resumes: the scan number and the directories still to visit."""

    scan_id: int = 0
    pending_dirs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> "ScanCursor":
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class ScanReport:
    cursor: ScanCursor
    complete: bool  # the walk reached its end during this call
    files_seen: int
    new_or_changed: int
    deleted: int


class LibraryScanner:
    """A photo library folder and the scanner state kept for it in the data folder."""

    def __init__(self, root: Path, layout: DataLayout, follow_external_links: bool = False):
        self.root = Path(root).resolve()
        self.layout = layout
        self.follow_external_links = follow_external_links
        layout.manifest_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(layout.scanner_database, timeout=60)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS files (
                path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                first_seen REAL, last_scan INTEGER, batch_key TEXT);
            CREATE INDEX IF NOT EXISTS files_batch ON files(batch_key);
            CREATE TABLE IF NOT EXISTS batches (batch_key TEXT PRIMARY KEY, created REAL, dirty INTEGER DEFAULT 0);
            """
        )

    def close(self) -> None:
        self._db.close()

    # -- walking -------------------------------------------------------------------------------------------------

    def _inside_library(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):  # symlink loops
            return False

    def _entries(self, relative_dir: str):
        """(relative path, stat or None) for files, and relative dirs to descend, of one directory."""
        files, dirs = [], []
        try:
            iterator = os.scandir(self.root / relative_dir)
        except OSError:
            return files, dirs  # unreadable or vanished directory: nothing in it can be catalogued
        with iterator:
            for entry in iterator:
                if entry.name.startswith(HIDDEN_PREFIX) or entry.name.lower().endswith(SIDECAR_SUFFIXES):
                    continue
                relative = os.path.join(relative_dir, entry.name) if relative_dir else entry.name
                try:
                    is_link = entry.is_symlink()
                    if is_link and not self.follow_external_links and not self._inside_library(Path(entry.path)):
                        continue  # a link out of the library is not ours to read
                    if entry.is_dir(follow_symlinks=False):
                        dirs.append(relative)
                        continue
                    if is_link and entry.is_dir(follow_symlinks=True):
                        if self.follow_external_links and not self._inside_library(Path(entry.path)):
                            dirs.append(relative)  # links inside the library are already walked directly
                        continue
                    info = entry.stat(follow_symlinks=True)
                except OSError:
                    info = None  # dangling link, symlink loop, vanished: catalogued, the photo asset records why
                if info is None or stat.S_ISREG(info.st_mode):
                    files.append((relative, info))
        return files, dirs

    def scan(self, cursor: ScanCursor | None = None, time_budget_s: float | None = None) -> ScanReport:
        """Walk (part of) the library, recording new, changed and deleted files. Resumable through the cursor."""
        cursor = cursor or ScanCursor()
        if not cursor.pending_dirs:  # a new walk: numbered after every walk recorded, whoever made it (sensor or CLI)
            last = self._db.execute("SELECT coalesce(max(last_scan), 0) FROM files").fetchone()[0]
            cursor = ScanCursor(scan_id=max(last, cursor.scan_id) + 1, pending_dirs=[""])
        deadline = time.monotonic() + time_budget_s if time_budget_s else None
        seen = changed = 0
        now = time.time()
        with self._db:
            visited = 0
            # At least one directory per call, so even a tiny budget makes progress.
            while cursor.pending_dirs and (deadline is None or not visited or time.monotonic() < deadline):
                visited += 1
                files, dirs = self._entries(cursor.pending_dirs.pop())
                cursor.pending_dirs.extend(sorted(dirs, reverse=True))
                for relative, info in files:
                    seen += 1
                    changed += self._record(relative, info, cursor.scan_id, now)
            complete = not cursor.pending_dirs
            deleted = self._forget_unseen(cursor.scan_id) if complete else 0
        return ScanReport(cursor, complete, seen, changed, deleted)

    def _record(self, relative: str, info: os.stat_result | None, scan_id: int, now: float) -> int:
        size, mtime_ns = (info.st_size, info.st_mtime_ns) if info else (-1, -1)
        key = encode_path(relative)
        row = self._db.execute("SELECT size, mtime_ns, batch_key FROM files WHERE path = ?", (key,)).fetchone()
        if row and (row[0], row[1]) == (size, mtime_ns):
            self._db.execute("UPDATE files SET last_scan = ? WHERE path = ?", (scan_id, key))
            return 0
        if row and row[2]:
            self._db.execute("UPDATE batches SET dirty = 1 WHERE batch_key = ?", (row[2],))
        self._db.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, first_seen, last_scan, batch_key) "
            "VALUES (?, ?, ?, ?, ?, NULL)",
            (key, size, mtime_ns, now, scan_id),
        )
        return 1

    def _forget_unseen(self, scan_id: int) -> int:
        self._db.execute(
            "UPDATE batches SET dirty = 1 WHERE batch_key IN "
            "(SELECT DISTINCT batch_key FROM files WHERE last_scan < ? AND batch_key IS NOT NULL)",
            (scan_id,),
        )
        return self._db.execute("DELETE FROM files WHERE last_scan < ?", (scan_id,)).rowcount

    # -- batching ------------------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM files WHERE batch_key IS NULL").fetchone()[0]

    def cut_batches(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_SECONDS,
        scan_complete: bool = True,
        now: float | None = None,
    ) -> list[str]:
        """Group pending files into new batches: full ones always, a partial one once its oldest file waited long
        enough (and only after a complete walk, so a scan in progress is not split into crumbs)."""
        now = time.time() if now is None else now
        created = []
        with self._db:
            while True:
                pending = self._db.execute(
                    "SELECT path, first_seen FROM files WHERE batch_key IS NULL ORDER BY first_seen, path LIMIT ?",
                    (batch_size,),
                ).fetchall()
                if not pending:
                    break
                full = len(pending) >= batch_size
                waited = now - pending[0][1] >= max_wait_s
                if not (full or (scan_complete and waited)):
                    break
                batch_key = self._new_batch_key(now)
                self._db.execute("INSERT INTO batches (batch_key, created, dirty) VALUES (?, ?, 0)", (batch_key, now))
                self._db.executemany(
                    "UPDATE files SET batch_key = ? WHERE path = ?", [(batch_key, path) for path, _ in pending]
                )
                self._write_manifest(batch_key)
                created.append(batch_key)
        return created

    def _new_batch_key(self, now: float) -> str:
        """Readable in the UI: import time, then a sequence number that keeps keys unique and ordered."""
        sequence = self._db.execute("SELECT count(*) FROM batches").fetchone()[0] + 1
        stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{sequence:05d}"

    def take_dirty_batches(self) -> list[str]:
        """Batches whose files changed or vanished since they were cut: their manifests are rewritten and they are
        returned once, to be re-materialised so deleted files disappear downstream."""
        with self._db:
            keys = [row[0] for row in self._db.execute("SELECT batch_key FROM batches WHERE dirty = 1 ORDER BY 1")]
            for key in keys:
                self._write_manifest(key)
            self._db.execute("UPDATE batches SET dirty = 0 WHERE dirty = 1")
        return keys

    def batch_keys(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT batch_key FROM batches ORDER BY batch_key")]

    def _write_manifest(self, batch_key: str) -> None:
        rows = self._db.execute(
            "SELECT path, size, mtime_ns FROM files WHERE batch_key = ? ORDER BY path", (batch_key,)
        ).fetchall()
        entries = [ManifestEntry(os.fsdecode(path), size, mtime) for path, size, mtime in rows]
        write_manifest(self.layout, batch_key, os.fsdecode(self.root), entries)
