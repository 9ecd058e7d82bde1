"""`photos`: the catalog of one batch — content hash, metadata, and a recorded error for every file that fails."""

import dagster as dg
import pyarrow.compute as pc

from photo_assets.analysis.catalog import catalog_batch
from photo_assets.assets.batches import BACKFILL_POLICY, BatchOutcome, materialize_batches
from photo_assets.assets.metadata import error_counts, preview
from photo_assets.assets.names import CATALOG_GROUP, PHOTOS
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary

CATALOG_VERSION = "catalog-v1"
CHECK_CATALOGUED = "every_manifest_file_catalogued"


@dg.asset(
    partitions_def=photo_batches,
    backfill_policy=BACKFILL_POLICY,
    group_name=CATALOG_GROUP,
    kinds={"python", "parquet"},
    code_version=CATALOG_VERSION,
    check_specs=[dg.AssetCheckSpec(CHECK_CATALOGUED, asset=PHOTOS)],
)
def photos(context: dg.AssetExecutionContext, photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """Every file of the batch's manifest, with photo_id = sha256 of its bytes, size, dimensions after EXIF
    orientation, capture time, camera, GPS, and `error` (null when the photo is fine)."""
    metadata, checks = materialize_batches(context, lambda batch_key: _catalog(photo_library, batch_key))
    return dg.MaterializeResult(metadata=metadata[None], check_results=checks)


def _catalog(photo_library: PhotoLibrary, batch_key: str) -> BatchOutcome:
    root, entries = photo_library.manifest(batch_key)
    table = catalog_batch(root, [entry.path for entry in entries])
    path = photo_library.store().write_batch(PHOTOS, batch_key, table)
    errors = error_counts(table)
    located = int(pc.sum(pc.is_valid(table["latitude"])).as_py() or 0)
    metadata = {
        "dagster/row_count": table.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "errors": sum(errors.values()),
        "errors_by_kind": dg.MetadataValue.json(errors),
        "photos_with_gps": located,
        "preview": preview(table, ["path", "format", "width", "height", "latitude", "longitude", "error"]),
    }
    check = dg.AssetCheckResult(
        check_name=CHECK_CATALOGUED,
        passed=table.num_rows == len(entries),
        metadata={"manifest_files": len(entries), "catalog_rows": table.num_rows},
    )
    return {None: metadata}, [check]
