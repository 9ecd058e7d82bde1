"""What the per-batch analyses read from the catalog: the photos that decoded, each once per content hash."""

from pathlib import Path

import pyarrow.compute as pc

from photo_assets.analysis.catalog import display_path
from photo_assets.assets.names import PHOTOS
from photo_assets.resources import PhotoLibrary


def analysable_photos(photo_library: PhotoLibrary, batch_key: str) -> dict[str, Path]:
    """photo_id -> absolute path for the batch's catalogued photos without an error (duplicates analysed once)."""
    root, entries = photo_library.manifest(batch_key)
    catalog = photo_library.store().read_batch(PHOTOS, batch_key)
    fine = pc.is_null(catalog["error"])
    real_paths = {display_path(entry.path): entry.path for entry in entries}
    photos: dict[str, Path] = {}
    for photo_id, shown in zip(catalog.filter(fine)["photo_id"].to_pylist(), catalog.filter(fine)["path"].to_pylist()):
        photos.setdefault(photo_id, root / real_paths[shown])
    return photos
