"""Natural Earth countries and GeoNames places, loaded once per process on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg


@lru_cache(maxsize=2)
def _load(directory: str):
    from photo_assets.analysis.location import GeoIndex  # geopandas costs seconds: only when a run needs it

    return GeoIndex.load(Path(directory) if directory else None)


class GeoData(dg.ConfigurableResource):
    """The geodata files (default: the repo's geodata/, or $PHOTO_ASSETS_GEODATA)."""

    geodata_dir: str = ""

    def index(self):
        return _load(self.geodata_dir)
