"""The photo library and the data folder, as one configurable resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from photo_assets import settings
from photo_assets.storage import DataLayout, DataStore, LabelLog
from photo_assets.storage.manifests import ManifestEntry, read_manifest
from photo_assets.storage.scanner import DEFAULT_BATCH_SIZE, LibraryScanner


class PhotoLibrary(dg.ConfigurableResource):
    """Which folder is analysed, where results go, and how new files are grouped into batches."""

    library_dir: str = Field(description=f"The photo library folder (${settings.LIBRARY_ENV}).")
    data_dir: str = Field(description=f"Where Parquet outputs, manifests and labels live (${settings.DATA_ENV}).")
    follow_external_links: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    max_wait_seconds: int = settings.DEFAULT_BATCH_WAIT_SECONDS
    xmp_beside_photos: bool = Field(
        default=False,
        description="Write XMP sidecars beside each photo as <file>.xmp (where digiKam, Lightroom, Immich and "
        "PhotoPrism look) instead of <data>/xmp_sidecars/; a read-only library folder is a per-photo error.",
    )
    review_url: str = Field(
        default=settings.DEFAULT_REVIEW_URL,
        description=f"Where the people review pages are served, for links in the UI (${settings.REVIEW_URL_ENV}).",
    )
    xmp_unnamed_regions: bool = Field(
        default=False,
        description="Also write the faces of unknown people into XMP sidecars, as MWG face regions without a name.",
    )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(Path(self.data_dir))

    def scanner(self) -> LibraryScanner:
        return LibraryScanner(Path(self.library_dir), self.layout, self.follow_external_links)

    def store(self) -> DataStore:
        return DataStore(self.layout)

    def label_log(self) -> LabelLog:
        return LabelLog(self.layout.label_log)

    def manifest(self, batch_key: str) -> tuple[Path, list[ManifestEntry]]:
        return read_manifest(self.layout, batch_key)
