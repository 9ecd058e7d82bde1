"""Batch manifests: which files a batch holds, recorded when it is cut, so re-materializing it is reproducible.

`<data>/batches/<batch_key>.json`: `{"version", "batch_key", "library", "written", "files": [{path, size,
mtime_ns}]}`; paths are relative to the library, in os.fsdecode form (a non-UTF-8 name round-trips).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from photo_assets.storage.atomic import write_atomically
from photo_assets.storage.layout import DataLayout

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the library, os.fsdecode form (may hold surrogate escapes)
    size: int
    mtime_ns: int


def write_manifest(layout: DataLayout, batch_key: str, library: str, entries: list[ManifestEntry]) -> None:
    document = {
        "version": MANIFEST_VERSION,
        "batch_key": batch_key,
        "library": library,
        "written": time.time(),
        "files": [{"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns} for entry in entries],
    }
    write_atomically(layout.manifest(batch_key), json.dumps(document).encode())


def _read_manifest_document(layout: DataLayout, batch_key: str) -> dict:
    return json.loads(layout.manifest(batch_key).read_text())


def read_manifest(layout: DataLayout, batch_key: str) -> tuple[Path, list[ManifestEntry]]:
    """The library root and the files a batch holds, as recorded when it was cut (or last re-cut)."""
    document = _read_manifest_document(layout, batch_key)
    return Path(document["library"]), [ManifestEntry(**entry) for entry in document["files"]]


def manifest_written(layout: DataLayout, batch_key: str) -> float:
    """When the batch was last cut or re-cut (its files changed): analyses older than this are out of date."""
    return float(_read_manifest_document(layout, batch_key)["written"])
