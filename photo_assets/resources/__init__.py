"""Dagster resources: thin, configurable handles on the library, the data folder, geodata and the models."""

from photo_assets.resources.face_models import FaceModels
from photo_assets.resources.geodata import GeoData
from photo_assets.resources.library import PhotoLibrary

__all__ = ["FaceModels", "GeoData", "PhotoLibrary"]
