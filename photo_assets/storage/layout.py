"""The data folder's layout: every path under it is built here and nowhere else.

```
<data>/
  library.sqlite                  the scanner's state: one row per file, which batch it is in
  batches/<batch_key>.json        each batch's manifest: the files it holds, as recorded when it was cut
  <asset>/<batch_key>.parquet     per-batch datasets (photos, color_histograms, locations, face_detections, ...)
  _retired/<asset>/*.parquet      rows of photos that left a batch, kept for reuse by content hash
  face_index/current.json         the face index build in use, and its files (index-*.ann, faces-*.parquet)
  person_clusters/faces.parquet   every face's person; people.parquet: one row per person; suggestions.parquet:
                                  ranked "same person?" pairs
  labels/label_log.jsonl          the user's edits, append-only
  face_crops/<id[:2]>/<id>.jpg    a small square crop of each face, cut by the faces step (people page, contact sheets)
  review_cache/photos/            photo previews of the review pages, by photo id, made on first view
  review_cache/thumbnails/<id[:2]>/  the search page's thumbnails, by photo id, made on first view
  xmp_sidecars/<path>.xmp         the XMP sidecar of each photo, mirroring the library's tree (other tools read it)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Per-batch datasets, each named as the asset that writes it.
PHOTOS = "photos"
COLOR_HISTOGRAMS = "color_histograms"
LOCATIONS = "locations"
FACE_DETECTIONS = "face_detections"
FACE_EMBEDDINGS = "face_embeddings"
OBJECT_DETECTIONS = "object_detections"
# Per batch, each photo's near-duplicate hashes: made by the colour step from its small copy.
FINGERPRINTS = "_fingerprints"
NEAR_DUPLICATES = "near_duplicates"
# Which photos were scanned with which model, faces or not: lets a re-run reuse a photo that has no faces too.
FACE_SCANS = "_face_scans"
# What each batch's sidecar writes did, per photo (written, unchanged, error).
XMP_SIDECAR_LOG = "xmp_sidecar_log"
XMP_SIDECARS_DIR = "xmp_sidecars"
XMP_SUFFIX = ".xmp"
PARQUET_SUFFIX = ".parquet"
RETIRED_DIR = "_retired"
MANIFEST_DIR = "batches"
SCANNER_DATABASE = "library.sqlite"
INDEX_DIR = "face_index"
INDEX_POINTER = "current.json"
INDEX_ANNOY_PREFIX, INDEX_FACES_PREFIX, ANNOY_SUFFIX = "index-", "faces-", ".ann"
CLUSTERS_DIR = "person_clusters"
# Faces added from other tools' regions and by hand: their rows sit beside the batches of face_detections and
# face_embeddings under this name (so every reader of those datasets sees them), the regions read in their folder.
ADDED_FACES_STEM = "added"
ADDED_FACES_DIR = "added_faces"
LABEL_LOG = "labels/label_log.jsonl"
REVIEW_CACHE_DIR = "review_cache"
REVIEW_PREVIEWS_DIR = "photos"
REVIEW_THUMBNAILS_DIR = "thumbnails"
JPEG_SUFFIX = ".jpg"
FACE_CROPS_DIR = "face_crops"
# Face crops are spread over 256 folders by their id's first two hex digits: a library's 100,000s of faces would make
# one folder slow to list and to back up.
FACE_CROPS_FANOUT = 2


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of output lives in one data folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- per-batch datasets ------------------------------------------------------------------------------------------

    def asset_dir(self, asset: str) -> Path:
        return self.root / asset

    def batch_file(self, asset: str, batch_key: str) -> Path:
        return self.asset_dir(asset) / f"{batch_key}{PARQUET_SUFFIX}"

    def batch_files(self, asset: str) -> list[Path]:
        """Every batch file of a per-batch dataset, in batch order (none before its first materialization)."""
        return sorted(self.asset_dir(asset).glob(f"*{PARQUET_SUFFIX}"))

    def retired_dir(self, asset: str) -> Path:
        return self.root / RETIRED_DIR / asset

    def retired_files(self, asset: str) -> list[Path]:
        return sorted(self.retired_dir(asset).glob(f"*{PARQUET_SUFFIX}"))

    # -- the scanner -------------------------------------------------------------------------------------------------

    @property
    def scanner_database(self) -> Path:
        return self.root / SCANNER_DATABASE

    @property
    def manifest_dir(self) -> Path:
        return self.root / MANIFEST_DIR

    def manifest(self, batch_key: str) -> Path:
        return self.manifest_dir / f"{batch_key}.json"

    # -- whole-library outputs ---------------------------------------------------------------------------------------

    @property
    def index_dir(self) -> Path:
        return self.root / INDEX_DIR

    @property
    def index_pointer(self) -> Path:
        return self.index_dir / INDEX_POINTER

    @staticmethod
    def index_build_names(stamp: str) -> tuple[str, str]:
        """The file names of one index build (the Annoy forest, the face table), both inside `index_dir`."""
        return f"{INDEX_ANNOY_PREFIX}{stamp}{ANNOY_SUFFIX}", f"{INDEX_FACES_PREFIX}{stamp}{PARQUET_SUFFIX}"

    def index_file(self, name: str) -> Path:
        return self.index_dir / name

    def index_build_files(self) -> list[Path]:
        """Every build's files, current and old."""
        directory = self.index_dir
        return [*directory.glob(f"{INDEX_ANNOY_PREFIX}*{ANNOY_SUFFIX}"),
                *directory.glob(f"{INDEX_FACES_PREFIX}*{PARQUET_SUFFIX}")]

    @property
    def clusters_dir(self) -> Path:
        return self.root / CLUSTERS_DIR

    @property
    def people_faces(self) -> Path:
        return self.clusters_dir / "faces.parquet"

    @property
    def people(self) -> Path:
        return self.clusters_dir / "people.parquet"

    @property
    def suggestions(self) -> Path:
        return self.clusters_dir / "suggestions.parquet"

    def added_faces_file(self, asset: str) -> Path:
        """The added faces' rows of face_detections or face_embeddings."""
        return self.batch_file(asset, ADDED_FACES_STEM)

    @property
    def added_faces_dir(self) -> Path:
        return self.root / ADDED_FACES_DIR

    @property
    def added_faces(self) -> Path:
        """Which faces were added, how (a region of another tool, or by hand) and from where."""
        return self.added_faces_dir / "faces.parquet"

    @property
    def face_regions(self) -> Path:
        return self.added_faces_dir / "regions.parquet"

    @property
    def region_scans(self) -> Path:
        """Per photo, the sidecars' signature its regions were read with, and what could not be read."""
        return self.added_faces_dir / "scans.parquet"

    @property
    def region_conflicts(self) -> Path:
        return self.added_faces_dir / "conflicts.parquet"

    @property
    def near_duplicates(self) -> Path:
        return self.root / NEAR_DUPLICATES / "groups.parquet"

    @property
    def near_duplicates_compared(self) -> Path:
        """The photos already looked up in the hashes' index (the others are new at the next run)."""
        return self.root / NEAR_DUPLICATES / "compared.parquet"

    @property
    def label_log(self) -> Path:
        return self.root / LABEL_LOG

    @property
    def review_cache(self) -> Path:
        return self.root / REVIEW_CACHE_DIR

    def photo_preview(self, photo_id: str) -> Path:
        return self.review_cache / REVIEW_PREVIEWS_DIR / f"{photo_id}{JPEG_SUFFIX}"

    def photo_thumbnail(self, photo_id: str) -> Path:
        return self.review_cache / REVIEW_THUMBNAILS_DIR / photo_id[:FACE_CROPS_FANOUT] / f"{photo_id}{JPEG_SUFFIX}"

    def face_crop(self, face_id: str) -> Path:
        return self.root / FACE_CROPS_DIR / face_id[:FACE_CROPS_FANOUT] / f"{face_id}{JPEG_SUFFIX}"

    @property
    def xmp_sidecars(self) -> Path:
        return self.root / XMP_SIDECARS_DIR

    def sidecar(self, relative: str) -> Path:
        """The mirror tree's sidecar of the library file at `relative`."""
        return self.xmp_sidecars / f"{relative}{XMP_SUFFIX}"


def files_signature(paths: list[Path]) -> tuple:
    """Each file's path, size and modification time (None when missing): it changes whenever one of them does, so
    what was read from them can be kept until then."""
    signature = []
    for path in paths:
        try:
            stat = path.stat()
            signature.append((str(path), stat.st_size, stat.st_mtime_ns))
        except FileNotFoundError:
            signature.append((str(path), None))
    return tuple(signature)
