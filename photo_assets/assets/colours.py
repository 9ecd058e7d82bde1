"""`color_histograms`: each catalogued photo's palette colours and their shares, per batch; from the same small copy,
each photo's near-duplicate hashes (`_fingerprints`, read by `near_duplicates`)."""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis import duplicates
from photo_assets.analysis.colours import ALGORITHM_VERSION, colour_histogram, small_copy
from photo_assets.analysis.images import PhotoError
from photo_assets.analysis.threads import map_in_threads
from photo_assets.assets.batches import BACKFILL_POLICY, BatchOutcome, materialize_batches
from photo_assets.assets.metadata import preview
from photo_assets.assets.names import ANALYSIS_GROUP, COLOR_HISTOGRAMS, PHOTOS
from photo_assets.assets.photo_rows import analysable_photos
from photo_assets.assets.progress import StepProgress
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import conformed
from photo_assets.storage.layout import FINGERPRINTS

COLOUR_SCHEMA = pa.schema(
    [
        ("photo_id", pa.string()),
        ("color", pa.string()),
        ("score", pa.float64()),
        ("rank", pa.int8()),
        ("version", pa.string()),
        ("error", pa.string()),
    ]
)
FINGERPRINT_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("hashes", pa.list_(pa.int64())), ("version", pa.string())]
)
CHECK_SHARES = "shares_in_range"


def _rows_for(photo_id: str, path) -> tuple[list[dict], list[dict]]:
    """(colour rows, fingerprint rows) of one photo, from one small copy."""
    try:
        image = small_copy(path)
    except PhotoError as error:
        return [{"photo_id": photo_id, "version": ALGORITHM_VERSION, "error": str(error)}], []
    colours = [
        {"photo_id": photo_id, "color": colour, "score": share, "rank": rank, "version": ALGORITHM_VERSION}
        for rank, (colour, share) in enumerate(colour_histogram(image), start=1)
    ]
    hashes = {"photo_id": photo_id, "hashes": list(duplicates.fingerprints(image)),
              "version": duplicates.ALGORITHM_VERSION}
    return colours, [hashes]


@dg.asset(
    partitions_def=photo_batches,
    backfill_policy=BACKFILL_POLICY,
    group_name=ANALYSIS_GROUP,
    kinds={"python", "numpy", "parquet"},
    code_version=f"{ALGORITHM_VERSION}+{duplicates.ALGORITHM_VERSION}",
    deps=[PHOTOS],
    check_specs=[dg.AssetCheckSpec(CHECK_SHARES, asset=COLOR_HISTOGRAMS)],
)
def color_histograms(context: dg.AssetExecutionContext, photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """17-colour palette shares (>= 0.005, largest first) from a 32x32 bicubic sample, compared in HSV with a
    circular hue distance. Photos analysed before (same content hash, same algorithm) are reused, not recomputed."""
    metadata, checks = materialize_batches(context, lambda batch_key: _colour_batch(photo_library, batch_key, context.log))
    return dg.MaterializeResult(metadata=metadata[None], check_results=checks)


def _with_reused(computed: pa.Table, reused: pa.Table | None, done: set[str]) -> pa.Table:
    if reused is None or not done:
        return computed
    kept = reused.filter(pc.is_in(reused["photo_id"], pa.array(sorted(done), pa.string())))
    return pa.concat_tables([computed, conformed(kept, computed.schema)])


def _colour_batch(photo_library: PhotoLibrary, batch_key: str, log=None) -> BatchOutcome:
    store = photo_library.store()
    photos = analysable_photos(photo_library, batch_key)
    # A photo is done when both its colours and its hashes were made by the code in use now.
    reused = store.reusable(COLOR_HISTOGRAMS, list(photos), ALGORITHM_VERSION)
    reused_hashes = store.reusable(FINGERPRINTS, list(photos), duplicates.ALGORITHM_VERSION)
    done = (set() if reused is None else set(reused["photo_id"].to_pylist())) & (
        set() if reused_hashes is None else set(reused_hashes["photo_id"].to_pylist()))
    todo = [(photo_id, path) for photo_id, path in photos.items() if photo_id not in done]
    progress = StepProgress(log, "colours", batch_key, len(todo))
    computed, hashes = [], []
    for colours, fingerprints in map_in_threads(lambda photo: _rows_for(*photo), todo):
        computed += colours
        hashes += fingerprints
        progress.advance()
    progress.finish()
    table = _with_reused(pa.Table.from_pylist(computed, schema=COLOUR_SCHEMA), reused, done)
    path = store.write_batch(COLOR_HISTOGRAMS, batch_key, table)
    store.write_batch(FINGERPRINTS, batch_key,
                      _with_reused(pa.Table.from_pylist(hashes, schema=FINGERPRINT_SCHEMA), reused_hashes, done))
    coloured = table.filter(pc.is_null(table["error"]))
    per_photo = coloured.group_by("photo_id").aggregate([("score", "sum"), ("score", "min"), ("score", "max")])
    shares_ok = per_photo.num_rows == 0 or (
        pc.max(per_photo["score_sum"]).as_py() <= 1.0 + 1e-9
        and pc.min(per_photo["score_min"]).as_py() > 0.0
        and pc.max(per_photo["score_max"]).as_py() <= 1.0
    )
    top = coloured.filter(pc.equal(coloured["rank"], 1))["color"].value_counts().to_pylist()
    metadata = {
        "dagster/row_count": table.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "photos_coloured": per_photo.num_rows,
        "photos_reused": len(done),
        "errors": table.num_rows - coloured.num_rows,
        "dominant_colours": dg.MetadataValue.json({entry["values"]: entry["counts"] for entry in top}),
        "preview": preview(table, ["photo_id", "color", "score", "rank"]),
    }
    check = dg.AssetCheckResult(
        check_name=CHECK_SHARES,
        passed=bool(shares_ok),
        description="Every share is in (0, 1] and a photo's kept shares sum to at most 1.",
    )
    return {None: metadata}, [check]
