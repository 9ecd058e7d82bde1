"""The photo library and the data folder, as one configurable resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from photo_assets.library import DEFAULT_BATCH_SIZE, DEFAULT_MAX_WAIT_SECONDS, Library, ManifestEntry, read_manifest
from photo_assets.storage import DataStore


class PhotoLibrary(dg.ConfigurableResource):
    """Which folder is analysed, where results go, and how new files are grouped into batches."""

    library_dir: str = Field(description="The photo library folder (PHOTO_ASSETS_LIBRARY).")
    data_dir: str = Field(description="Where Parquet outputs, manifests and labels live (PHOTO_ASSETS_DATA).")
    follow_external_links: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    max_wait_seconds: int = DEFAULT_MAX_WAIT_SECONDS
    xmp_beside_photos: bool = Field(
        default=False,
        description="Write XMP sidecars beside each photo as <file>.xmp (where digiKam, Lightroom, Immich and "
        "PhotoPrism look) instead of <data>/xmp_sidecars/; a read-only library folder is a per-photo error.",
    )
    xmp_unnamed_regions: bool = Field(
        default=False,
        description="Also write the faces of unknown people into XMP sidecars, as MWG face regions without a name.",
    )

    def open(self) -> Library:
        return Library(Path(self.library_dir), Path(self.data_dir), self.follow_external_links)

    def store(self) -> DataStore:
        return DataStore(Path(self.data_dir))

    def manifest(self, batch_key: str) -> tuple[Path, list[ManifestEntry]]:
        return read_manifest(Path(self.data_dir), batch_key)
