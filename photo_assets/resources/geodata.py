"""Natural Earth countries and GeoNames places, loaded once per process on first use."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import dagster as dg

# The committed files (geodata/README.md); PHOTO_ASSETS_GEODATA points elsewhere (docs/scale-out.md).
GEODATA_ENV = "PHOTO_ASSETS_GEODATA"
DEFAULT_GEODATA_DIR = Path(__file__).resolve().parents[2] / "geodata"


@lru_cache(maxsize=2)
def _load(directory: str):
    from photo_assets.analysis.location import GeoIndex  # geopandas costs seconds: only when a run needs it

    return GeoIndex.load(Path(directory))


class GeoData(dg.ConfigurableResource):
    """The geodata files (default: $PHOTO_ASSETS_GEODATA, else the repo's geodata/)."""

    geodata_dir: str = ""

    def directory(self) -> Path:
        return Path(self.geodata_dir or os.environ.get(GEODATA_ENV) or DEFAULT_GEODATA_DIR).resolve()

    def index(self):
        return _load(str(self.directory()))
