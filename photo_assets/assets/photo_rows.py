"""What the per-batch analyses read from the catalog: the photos that decoded, each once per content hash."""

from pathlib import Path

import pyarrow.compute as pc

from photo_assets.analysis.catalog import display_path
from photo_assets.assets.names import PHOTOS
from photo_assets.resources import PhotoLibrary


def analysable_photos(photo_library: PhotoLibrary, batch_key: str, root: Path | None = None) -> dict[str, Path]:
    """photo_id -> absolute path for the batch's catalogued photos without an error (duplicates analysed once), under
    the folder the batch was scanned in (its manifest's) or under `root`."""
    scanned_in, entries = photo_library.manifest(batch_key)
    root = root or scanned_in
    catalog = photo_library.store().read_batch(PHOTOS, batch_key)
    fine = pc.is_null(catalog["error"])
    real_paths = {display_path(entry.path): entry.path for entry in entries}
    photos: dict[str, Path] = {}
    for photo_id, shown in zip(catalog.filter(fine)["photo_id"].to_pylist(), catalog.filter(fine)["path"].to_pylist()):
        photos.setdefault(photo_id, root / real_paths[shown])
    return photos


def library_photos(photo_library: PhotoLibrary) -> tuple[dict[str, Path], dict[str, tuple[int, int]]]:
    """(photo_id -> absolute path, photo_id -> oriented (width, height)) of every catalogued photo that decoded, each
    content once, in the library as configured now (a batch's manifest keeps the folder it was scanned in, which may
    have moved since)."""
    photos: dict[str, Path] = {}
    for path in photo_library.layout.batch_files(PHOTOS):
        for photo_id, photo in analysable_photos(photo_library, path.stem, Path(photo_library.library_dir)).items():
            photos.setdefault(photo_id, photo)
    catalog = photo_library.store().read_all(PHOTOS, columns=["photo_id", "width", "height"])
    sizes = {} if catalog is None else {row["photo_id"]: (row["width"], row["height"]) for row in catalog.to_pylist()}
    return photos, sizes
