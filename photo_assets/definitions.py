"""The one Definitions object: assets, checks, resources, sensors, schedules and jobs."""

import os

import dagster as dg

from photo_assets import settings
from photo_assets.assets.catalog import photos
from photo_assets.assets.colours import color_histograms
from photo_assets.assets.locations import locations
from photo_assets.resources import GeoData, PhotoLibrary
from photo_assets.sensors import new_photos_sensor


def _setting(env_name: str, default) -> str | dg.EnvVar:
    """Read from the environment at run time when set (the UI shows where it came from), else the default."""
    return dg.EnvVar(env_name) if os.environ.get(env_name) else str(default)


def build_resources() -> dict:
    return {
        "photo_library": PhotoLibrary(
            library_dir=_setting(settings.LIBRARY_ENV, settings.library_dir()),
            data_dir=_setting(settings.DATA_ENV, settings.data_dir()),
        ),
        "geodata": GeoData(),
    }


defs = dg.Definitions(
    assets=[photos, color_histograms, locations],
    sensors=[new_photos_sensor],
    resources=build_resources(),
)
