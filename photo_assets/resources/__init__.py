"""Dagster resources: thin, configurable handles on the library, the data folder and the models."""

from photo_assets.resources.library import PhotoLibrary

__all__ = ["PhotoLibrary"]
