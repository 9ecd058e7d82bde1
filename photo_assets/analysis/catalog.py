"""The photo catalog: one row per file of a batch, with its content hash, metadata and, when it fails, why."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from photo_assets.analysis.images import PhotoError, open_oriented, read_metadata
from photo_assets.analysis.threads import map_in_threads

# Read files in 1 MiB blocks: hashing a 50 MB RAW-sized file never holds it whole in memory.
HASH_BLOCK = 1 << 20
# Decoding at this size proves the whole file decodes (a truncated JPEG fails) at ~1/64 of a full decode's cost.
VERIFY_DECODE_SIDE = 256

CATALOG_SCHEMA = pa.schema(
    [
        ("photo_id", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.timestamp("us", tz="UTC")),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("orientation", pa.int8()),
        ("captured_at", pa.timestamp("us")),
        ("camera_make", pa.string()),
        ("camera_model", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("altitude", pa.float64()),
        ("error_kind", pa.string()),
        ("error", pa.string()),
    ]
)


def encode_path(relative: str) -> bytes:
    """Paths are stored as bytes: a non-UTF-8 file name round-trips exactly."""
    return os.fsencode(relative)


def display_path(relative: str) -> str:
    """A printable, valid UTF-8 form of a path whose name may not be UTF-8."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def content_hash(path: Path) -> str:
    """The photo's identity: sha256 of its bytes, so a moved or renamed file keeps its id and its analyses."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
    except FileNotFoundError as error:
        raise PhotoError("missing", "file vanished before it could be read") from error
    except IsADirectoryError as error:
        raise PhotoError("unreadable", "is a directory") from error
    except OSError as error:
        raise PhotoError("unreadable", error.strerror or str(error)) from error
    return digest.hexdigest()


def catalog_entry(root: Path, relative: str) -> dict:
    """One catalog row for the file at `relative` (os.fsdecode form) under `root`; every failure is a recorded
    error, never an exception."""
    path = root / relative
    row: dict = {name: None for name in CATALOG_SCHEMA.names}
    row["path"] = display_path(relative)
    try:
        info = os.stat(path)
        row["size"] = info.st_size
        row["mtime"] = datetime.fromtimestamp(info.st_mtime, tz=timezone.utc)
        row["photo_id"] = content_hash(path)
        if info.st_size == 0:
            raise PhotoError("empty", "zero-byte file")
        metadata = read_metadata(path)
        open_oriented(path, max_side=VERIFY_DECODE_SIDE).close()
    except PhotoError as error:
        row["error_kind"], row["error"] = error.kind, str(error)
        return row
    except FileNotFoundError:
        row["error_kind"], row["error"] = "missing", "missing: file vanished before it could be read"
        return row
    except OSError as error:
        row["error_kind"], row["error"] = "unreadable", f"unreadable: {error.strerror or error}"
        return row
    except Exception as error:  # noqa: BLE001 - one photo's surprise must not cost the batch its other results
        row["error_kind"], row["error"] = "internal", f"internal: {type(error).__name__}: {error}"
        return row
    row.update(
        format=metadata.format,
        width=metadata.width,
        height=metadata.height,
        orientation=metadata.orientation,
        captured_at=metadata.captured_at,
        camera_make=metadata.camera_make,
        camera_model=metadata.camera_model,
        latitude=metadata.latitude,
        longitude=metadata.longitude,
        altitude=metadata.altitude,
    )
    return row


def catalog_batch(root: Path, relative_paths: list[str]) -> pa.Table:
    rows = map_in_threads(lambda relative: catalog_entry(root, relative), relative_paths)
    return pa.Table.from_pylist(list(rows), schema=CATALOG_SCHEMA)
