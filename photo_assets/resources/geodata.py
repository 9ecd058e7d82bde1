"""Natural Earth countries and GeoNames places, loaded once per process on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from photo_assets import settings


@lru_cache(maxsize=2)
def _load(directory: str):
    from photo_assets.analysis.location import GeoIndex  # geopandas costs seconds: only when a run needs it

    return GeoIndex.load(Path(directory))


class GeoData(dg.ConfigurableResource):
    """The geodata files (settings: PHOTO_ASSETS_GEODATA, else the repo's geodata/)."""

    geodata_dir: str = str(settings.DEFAULT_GEODATA)

    def index(self):
        return _load(str(Path(self.geodata_dir).resolve()))
