"""Where things are by default: every path can be overridden by an environment variable or resource config."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LIBRARY_ENV = "PHOTO_ASSETS_LIBRARY"
DATA_ENV = "PHOTO_ASSETS_DATA"
# How long a partial batch waits for more files (seconds); the demo sets 0 so results show at once.
BATCH_WAIT_ENV = "PHOTO_ASSETS_BATCH_WAIT_SECONDS"
# How many batches a backfill puts in one run (read when the definitions load): fewer isolate failures better, more
# pay the start-up of a run less often.
BATCHES_PER_BACKFILL_RUN_ENV = "PHOTO_ASSETS_BATCHES_PER_BACKFILL_RUN"
# With no library named, the demo library the setup step builds from scikit-image's sample photos.
DEFAULT_LIBRARY = PROJECT_DIR / "demo_library"
DEFAULT_DATA = PROJECT_DIR / "data"


def library_dir() -> Path:
    return Path(os.environ.get(LIBRARY_ENV) or DEFAULT_LIBRARY)


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA)
