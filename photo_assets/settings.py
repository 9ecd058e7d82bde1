"""Every setting the project reads from the environment, with its default: the one place that reads `os.environ`.

The Dagster resources are built from these (definitions.py) and hand every path to the analysis code as an
argument; the command line builds its own `Settings` from its flags and passes them the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

# The photo library to analyse; with none named, the demo library the setup step builds from scikit-image's photos.
LIBRARY_ENV = "PHOTO_ASSETS_LIBRARY"
DEFAULT_LIBRARY = PROJECT_DIR / "demo_library"
# Where outputs, manifests, the index, the people and the label log live.
DATA_ENV = "PHOTO_ASSETS_DATA"
DEFAULT_DATA = PROJECT_DIR / "data"
# The built Natural Earth and GeoNames files (committed, see geodata/README.md).
GEODATA_ENV = "PHOTO_ASSETS_GEODATA"
DEFAULT_GEODATA = PROJECT_DIR / "geodata"
# Model weights fetched by the setup step (`python -m photo_assets.models fetch`).
MODELS_ENV = "PHOTO_ASSETS_MODELS"
DEFAULT_MODELS = PROJECT_DIR / "models"
# The descriptor people are grouped by: "dlib" (dlib's ResNet, the default) or "facenet" (FaceNet-128, the reference
# design's). Switching re-embeds every face (the faces' model version changes); every label survives.
FACE_DESCRIPTOR_ENV = "PHOTO_ASSETS_FACE_DESCRIPTOR"
DEFAULT_FACE_DESCRIPTOR = "dlib"
# How long a partial batch waits for more files (seconds); the demo sets 0 so results show at once.
BATCH_WAIT_ENV = "PHOTO_ASSETS_BATCH_WAIT_SECONDS"
DEFAULT_BATCH_WAIT_SECONDS = 10 * 60
# How many batches a backfill puts in one run: each run pays Python's and Dagster's start-up once instead of once
# per batch (bench/backfill.py), while a failed run costs at most this many batches, and less: a re-run reuses every
# photo's finished rows by content hash.
BATCHES_PER_BACKFILL_RUN_ENV = "PHOTO_ASSETS_BATCHES_PER_BACKFILL_RUN"
DEFAULT_BATCHES_PER_BACKFILL_RUN = 10
# Where the people review pages are served (`photo-assets review`; scripts/run.sh sets it), for links in the UI.
REVIEW_URL_ENV = "PHOTO_ASSETS_REVIEW_URL"
DEFAULT_REVIEW_URL = "http://127.0.0.1:3001/"
# Dagster's own state; without it, the project's instance (SQLite, pools, retention) that `dagster dev` shows.
DAGSTER_HOME_ENV = "DAGSTER_HOME"
DEFAULT_DAGSTER_HOME = PROJECT_DIR / "dagster_home"
# TensorFlow's own: "3" keeps its C++ log to errors.
TENSORFLOW_LOG_LEVEL_ENV, TENSORFLOW_ERRORS_ONLY = "TF_CPP_MIN_LOG_LEVEL", "3"
# The Celery broker (docs/scale-out.md): when set, launched runs hand each step to Celery workers, on any machine,
# instead of a process of their own. The result backend defaults to the broker, which is right for Redis.
CELERY_BROKER_ENV = "PHOTO_ASSETS_CELERY_BROKER"
CELERY_BACKEND_ENV = "PHOTO_ASSETS_CELERY_BACKEND"
# The Postgres instance (deploy/postgres/dagster.yaml) reads its credentials itself, from these variables.
POSTGRES_ENVS = ("PHOTO_ASSETS_PG_USER", "PHOTO_ASSETS_PG_PASSWORD", "PHOTO_ASSETS_PG_HOST", "PHOTO_ASSETS_PG_PORT",
                 "PHOTO_ASSETS_PG_DB")


@dataclass(frozen=True)
class Settings:
    library_dir: Path
    data_dir: Path
    geodata_dir: Path
    models_dir: Path
    batch_wait_seconds: int
    batches_per_backfill_run: int
    dagster_home: Path
    review_url: str
    face_descriptor: str = DEFAULT_FACE_DESCRIPTOR
    celery_broker: str | None = None
    celery_backend: str | None = None
    # Which settings came from the environment: Dagster resources read those at run time (the UI shows it).
    from_environment: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> "Settings":
        given = {name for name in (LIBRARY_ENV, DATA_ENV, GEODATA_ENV, MODELS_ENV, BATCH_WAIT_ENV, REVIEW_URL_ENV,
                                   FACE_DESCRIPTOR_ENV) if _env(name)}
        return cls(
            library_dir=Path(_env(LIBRARY_ENV) or DEFAULT_LIBRARY),
            data_dir=Path(_env(DATA_ENV) or DEFAULT_DATA),
            geodata_dir=Path(_env(GEODATA_ENV) or DEFAULT_GEODATA),
            models_dir=Path(_env(MODELS_ENV) or DEFAULT_MODELS).resolve(),
            batch_wait_seconds=int(_env(BATCH_WAIT_ENV) or DEFAULT_BATCH_WAIT_SECONDS),
            batches_per_backfill_run=int(_env(BATCHES_PER_BACKFILL_RUN_ENV) or DEFAULT_BATCHES_PER_BACKFILL_RUN),
            dagster_home=Path(_env(DAGSTER_HOME_ENV) or DEFAULT_DAGSTER_HOME),
            review_url=_env(REVIEW_URL_ENV) or DEFAULT_REVIEW_URL,
            face_descriptor=_env(FACE_DESCRIPTOR_ENV) or DEFAULT_FACE_DESCRIPTOR,
            celery_broker=_env(CELERY_BROKER_ENV),
            celery_backend=_env(CELERY_BACKEND_ENV) or _env(CELERY_BROKER_ENV),
            from_environment=frozenset(given),
        )

    def with_paths(self, library_dir: Path | None = None, data_dir: Path | None = None) -> "Settings":
        """These settings with the library or data folder given explicitly (a command-line flag wins)."""
        changed = {}
        explicit = set(self.from_environment)
        if library_dir is not None:
            changed["library_dir"] = Path(library_dir).resolve()
            explicit.discard(LIBRARY_ENV)
        if data_dir is not None:
            changed["data_dir"] = Path(data_dir).resolve()
            explicit.discard(DATA_ENV)
        return replace(self, **changed, from_environment=frozenset(explicit))


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up notices (oneDNN, absl) are noise on a user's terminal; TensorFlow reads this once,
    when it is first imported, so it is set before any face model loads (unless the user set it)."""
    os.environ.setdefault(TENSORFLOW_LOG_LEVEL_ENV, TENSORFLOW_ERRORS_ONLY)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None
