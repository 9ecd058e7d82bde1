"""Atomic writes: every file under the data folder is replaced whole or not at all (temp file, fsync, rename)."""

from __future__ import annotations

import os
import time
from pathlib import Path

# A temporary file of a writer that died (kill -9, power cut) is removed once it is this old: younger ones may belong
# to a live writer on another machine sharing the data folder, whose pid means nothing here.
STALE_TEMPORARY_AGE_SECONDS = 3600


def write_atomically(target: Path, payload: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename: readers see the old file or the new one, never a torn one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(target)  # never read as data, but each killed write would otherwise leave one for good
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _remove_dead_temporaries(target: Path) -> None:
    """Remove temporary siblings of `target` (`.<name>.<pid>.tmp`) whose writer is gone and which are old."""
    prefix, suffix = f".{target.name}.", ".tmp"
    with os.scandir(target.parent) as entries:
        for entry in entries:
            pid = entry.name[len(prefix):-len(suffix)]
            if not (entry.name.startswith(prefix) and entry.name.endswith(suffix) and pid.isdigit()):
                continue
            try:
                if process_alive(int(pid)) or time.time() - entry.stat().st_mtime < STALE_TEMPORARY_AGE_SECONDS:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                pass  # another writer removed it first


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
